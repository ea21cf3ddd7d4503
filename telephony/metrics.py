"""Prometheus metrics (``prometheus_client``), served at ``GET /metrics``.

Counters and histograms are kept where the work happens (the webhooks, the worker's jobs) through
the small functions below, so nothing else imports Prometheus; the domain never does (breakers
report through ``restrictions.resilience.on_breaker_change``, alerts are counted from what
``alerts.evaluate`` returns). Stream and backlog lengths are read from Redis and PostgreSQL when
scraped (``Backlog``), under the readiness checks' deadlines.

Under gunicorn set ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory, shared by the processes of
one host): every process writes its values there and any of them answers for all
(``multiprocess`` mode; ``telephony.gunicorn_config`` tells prometheus_client when a process
has gone). Without it one process's own registry is served. ``/metrics`` answers only a bearer token
(``METRICS_TOKEN``) or an allowed address (``METRICS_ALLOWED_ADDRESSES``, by default loopback
only; a request that came through a proxy, with ``X-Forwarded-For`` or ``Forwarded``, is never
allowed by its address).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from restrictions.resilience import on_breaker_change
from telephony.config import ConfigurationError, from_environment
from telephony.errors import json_error

disable_created_metrics()  # type: ignore[no-untyped-call]  # no ``*_created`` series: nothing here needs them

INBOUND_CALLS = Counter(
    "callguard_inbound_calls",
    "Inbound calls answered, by route and by whether the fallback answered them",
    ["route", "fallback"],
)
INBOUND_SECONDS = Histogram(
    "callguard_inbound_decision_seconds",
    "From the inbound webhook's arrival to its TwiML (the decision's deadline is 0.6 s)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.6, 0.8, 1.0, 2.5),
)
DIAL_OUTS = Counter(
    "callguard_dial_outs",
    "People rung for waiting callers: rung, skipped (already rung, over or too late), "
    "unconfirmed (Twilio did not answer in time), refused (Twilio refused)",
    ["outcome"],
)
DIAL_OUT_DELAY = Histogram(
    "callguard_dial_out_delay_seconds",
    "From the inbound webhook to Twilio accepting the call that rings the person",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0),
)
EVENTS_STORED = Counter(
    "callguard_events_stored",
    "Twilio callbacks kept, by source and by where (postgresql, or redis while PostgreSQL "
    "could not take them)",
    ["source", "store"],
)
EVENTS_NOT_KEPT = Counter(
    "callguard_events_not_kept",
    "Twilio callbacks neither PostgreSQL nor Redis could keep (Twilio got a 503)",
    ["source"],
)
EVENTS_PROCESSED = Counter(
    "callguard_events_processed", "Stored callbacks processed, by source", ["source"]
)
EVENTS_PARKED = Counter(
    "callguard_events_parked", "Stored callbacks parked for an admin after failing repeatedly"
)
ALERTS_OPENED = Counter(
    "callguard_alerts_opened", "Excessive-contact alerts opened, by rule", ["rule"]
)
AGENT_ACTIONS = Counter(
    "callguard_agent_actions",
    "Agents' Warn and End presses by outcome (warn: sent, its playing is reported to the "
    "console; end: ok, caller_gone; either: failed)",
    ["kind", "outcome"],
)
BREAKER_OPEN = Gauge(
    "callguard_breaker_open",
    "1 while a dependency's circuit breaker is open (its last use failed), in any process",
    ["breaker"],
    multiprocess_mode="livemax",
)

for _outcome in ("rung", "skipped", "unconfirmed", "refused"):
    DIAL_OUTS.labels(outcome=_outcome)
INBOUND_CALLS.labels(route="default", fallback="true")
EVENTS_PARKED.inc(0)

ALLOWED = "callguard.metrics.allowed"


# --- what the rest of the web layer and the jobs call -------------------------------------------


def inbound_call(route: str, *, fallback: bool, seconds: float | None = None) -> None:
    INBOUND_CALLS.labels(route=route, fallback="true" if fallback else "false").inc()
    if seconds is not None:
        INBOUND_SECONDS.observe(seconds)


def inbound_latency(seconds: float) -> None:
    INBOUND_SECONDS.observe(seconds)


def dial_out(outcome: str, since: datetime | None = None) -> None:
    DIAL_OUTS.labels(outcome=outcome).inc()
    if since is not None:
        started = since if since.tzinfo else since.replace(tzinfo=UTC)
        DIAL_OUT_DELAY.observe(max((datetime.now(UTC) - started).total_seconds(), 0.0))


def event_stored(source: str, store: str) -> None:
    EVENTS_STORED.labels(source=source, store=store).inc()


def event_not_kept(source: str) -> None:
    EVENTS_NOT_KEPT.labels(source=source).inc()


def event_processed(source: str) -> None:
    EVENTS_PROCESSED.labels(source=source).inc()


def event_parked() -> None:
    EVENTS_PARKED.inc()


def alerts_opened(rules: Iterable[str]) -> None:
    for rule in rules:
        ALERTS_OPENED.labels(rule=rule).inc()


def agent_action(kind: str, outcome: str) -> None:
    AGENT_ACTIONS.labels(kind=kind, outcome=outcome).inc()


def _breaker_changed(name: str, is_open: bool) -> None:
    BREAKER_OPEN.labels(breaker=name).set(1 if is_open else 0)


# --- scraping -----------------------------------------------------------------------------------


class _ThisProcess(Collector):
    """The process's own registry (no PROMETHEUS_MULTIPROC_DIR)."""

    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()


class Backlog(Collector):
    """Stream and backlog lengths, read when scraped (``telephony.readiness.backlog``)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from telephony.readiness import BACKLOG_HELP, backlog

        measured = backlog(self.app, parked=True).values
        for name, value in measured.items():
            if value is not None:
                yield GaugeMetricFamily(f"callguard_{name}", BACKLOG_HELP[name], value=value)


def registry(app: Flask | None = None) -> CollectorRegistry:
    """What a scrape reads: every process's values (multiprocess mode) or this one's, and, given
    the app, the backlog read now."""
    scrape = CollectorRegistry(auto_describe=False)
    if from_environment("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(scrape)  # type: ignore[no-untyped-call]
    else:
        scrape.register(_ThisProcess())
    if app is not None:
        scrape.register(Backlog(app))
    return scrape


def _networks(raw: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        return [ipaddress.ip_network(p.strip(), strict=False) for p in raw.split(",") if p.strip()]
    except ValueError as exc:
        raise ConfigurationError(f"METRICS_ALLOWED_ADDRESSES: {exc}") from None


def _refusal() -> Response | None:
    """None when the scrape may be answered: a valid bearer token, or an allowed address that
    did not come through a proxy."""
    token = current_app.config.get("METRICS_TOKEN") or ""
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer "):
        if hmac.compare_digest(given.removeprefix("Bearer ").encode(), token.encode()):
            return None
    proxied = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        address = None
    allowed = current_app.extensions[ALLOWED]
    if address is not None and not proxied and any(address in net for net in allowed):
        return None
    if token:
        return json_error("/metrics needs its bearer token (METRICS_TOKEN)", 401)
    return json_error("/metrics is not served to this address (METRICS_ALLOWED_ADDRESSES)", 403)


def _metrics() -> Response:
    refused = _refusal()
    if refused is not None:
        return refused
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    response = Response(generate_latest(registry(app)), status=200)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    response.headers["Cache-Control"] = "no-store"
    return response


def serve_for_worker(app: Flask) -> bool:
    """A worker process's own metrics on ``WORKER_METRICS_PORT`` (on ``WORKER_METRICS_ADDR``,
    127.0.0.1 by default), when set: the jobs' counters (dial-outs, events, alerts) where no
    web process shares the worker's PROMETHEUS_MULTIPROC_DIR."""
    port = str(app.config["WORKER_METRICS_PORT"] or "")
    if not port.isdigit():
        return False
    addr = str(app.config["WORKER_METRICS_ADDR"])
    start_http_server(int(port), addr=addr, registry=registry())
    return True


def init_app(app: Flask) -> None:
    app.extensions[ALLOWED] = _networks(str(app.config["METRICS_ALLOWED_ADDRESSES"] or ""))
    on_breaker_change(_breaker_changed)
    app.add_url_rule("/metrics", "metrics", _metrics, methods=["GET"])
