"""Where a call can be sent, parsed once: ``dial:<E.164>``, ``dial:sip:…``, ``client:<name>``
(``dial:client:<name>`` too), ``enqueue:<queue>``, ``taskrouter:<WorkflowSid>`` or
``redirect:<URL>``. Nothing else in callguard
splits these strings."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from restrictions.errors import Invalid
from restrictions.phone import to_e164


def public_https_url(url: str) -> str:
    """A redirect: route's URL: https:// to a public host (Twilio fetches it and would hand it our
    caller), never http://, localhost, a name without a dot or an internal IP address."""
    problem = f"redirect:{url} must be an https:// URL on a public host"
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
    except ValueError as exc:
        raise Invalid(f"{problem}: {exc}") from exc
    if parts.scheme != "https":
        given = f"{parts.scheme}://" if parts.scheme else "a URL without a scheme"
        raise Invalid(f"{problem}, not {given}")
    if not host:
        raise Invalid(f"{problem}: it names no host")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if not address.is_global:
            raise Invalid(f"{problem}: {host} is a private, loopback or link-local address")
    elif host == "localhost" or host.endswith(".localhost") or "." not in host:
        raise Invalid(f"{problem}: {host} is not a public host name")
    return url


class Scheme(StrEnum):
    NUMBER = "number"
    SIP = "sip"
    CLIENT = "client"
    ENQUEUE = "enqueue"
    REDIRECT = "redirect"
    TASKROUTER = "taskrouter"  # a TaskRouter Workflow (WW…) routes and bridges the call


WORKFLOW_SID = re.compile(r"^WW[0-9a-f]{32}$")


@dataclass(frozen=True)
class Destination:
    scheme: Scheme
    target: str  # an E.164 number, a sip: URI, a client identity, a queue name or a URL

    @classmethod
    def parse(cls, value: str) -> Destination:
        """Read a route or a SPOC's address; Invalid says what is wrong."""
        text = (value or "").strip()
        prefix, _, rest = text.partition(":")
        if prefix == "dial":
            return cls._dialled(rest, value)
        if prefix == "client" and rest:
            return cls(Scheme.CLIENT, rest)
        if prefix == "enqueue" and rest:
            return cls(Scheme.ENQUEUE, rest)
        if prefix == "redirect":
            return cls(Scheme.REDIRECT, public_https_url(rest))
        if prefix == "taskrouter":
            if not WORKFLOW_SID.match(rest):
                raise Invalid(f"{value!r}: taskrouter: takes a TaskRouter Workflow SID (WW…)")
            return cls(Scheme.TASKROUTER, rest)
        if text.startswith("+"):
            return cls._dialled(text, value)
        raise Invalid(
            f"{value!r} is not a destination: expected dial:<number|sip:…|client:…>, "
            "client:<name>, enqueue:<queue>, taskrouter:<WorkflowSid> or redirect:<URL>"
        )

    @classmethod
    def _dialled(cls, rest: str, original: str) -> Destination:
        if rest.startswith("sip:") and len(rest) > 4:
            return cls(Scheme.SIP, rest)
        if rest.startswith("client:") and len(rest) > 7:
            return cls(Scheme.CLIENT, rest.removeprefix("client:"))
        return cls(Scheme.NUMBER, to_e164(rest))

    @property
    def dials(self) -> bool:
        """A person's phone or client that callguard can ring into the caller's conference."""
        return self.scheme in (Scheme.NUMBER, Scheme.SIP, Scheme.CLIENT)

    @property
    def address(self) -> str:
        """What Twilio's REST API takes as ``To``: +44…, sip:…, or client:<name>."""
        if self.scheme is Scheme.CLIENT:
            return f"client:{self.target}"
        return self.target

    def __str__(self) -> str:
        if self.scheme is Scheme.CLIENT:
            return f"client:{self.target}"
        if self.dials:
            return f"dial:{self.target}"
        return f"{self.scheme.value}:{self.target}"
