"""JSON API: customers."""

from __future__ import annotations

from telephony.api import bp  # noqa: F401
