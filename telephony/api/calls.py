"""JSON API: calls."""

from __future__ import annotations

from telephony.api import bp  # noqa: F401
