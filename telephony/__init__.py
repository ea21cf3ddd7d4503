"""callguard: applies a landlord's unacceptable-customer-behaviour decisions on its phone line.

``create_app`` is the only way an app is made: its configuration comes from ``telephony.config``
(the defaults, then the environment, then a test's overrides). Each piece of infrastructure has
an ``init_app``; nothing is built at import.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from telephony.config import INSTANCE, SETTINGS, load


def create_app(test_config: dict[str, Any] | None = None, *, serving: bool = True) -> Flask:
    """Build the app. ``serving=False`` (the CLI) does not need SECRET_KEY: nothing is signed,
    and only a REDIS_URL that is not Redis is refused (``telephony.startup``)."""
    app = Flask(__name__, instance_path=str(INSTANCE))
    settings = load(app, test_config, serving=serving)
    app.extensions[SETTINGS] = settings

    from telephony import (
        api,
        auth,
        bulkhead,
        errors,
        inputs,
        limits,
        logs,
        metrics,
        pages,
        readiness,
        redis_store,
        security,
        startup,
        twilio_gateway,
        webhooks,
    )
    from telephony import database as db

    logs.init_app(app)  # first: every answer gets its access line (its hook reads no body)
    if serving:
        startup.log_warnings(app, settings, "web")
    limits.init_app(app)  # then: an oversize body is refused before anything reads it
    bulkhead.init_app(app)
    errors.init_app(app)
    security.init_app(app)
    inputs.init_app(app)
    metrics.init_app(app)  # before the breakers are made: they report to it
    db.init_app(app)
    redis_store.init_app(app)
    readiness.init_app(app)
    db.database(app).attach_cache(redis_store.redis_client(app))
    twilio_gateway.init_app(app)
    auth.init_app(app)
    security.csrf.init_app(app)
    webhooks.init_app(app)
    api.init_app(app)
    pages.init_app(app)
    security.csrf.exempt(webhooks.bp)
    security.csrf.exempt(api.bp)
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:  # outermost: every hook, the limiter and the logs see the client the proxy saw
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
    return app
