"""Twilio status webhooks (routes on the signed /twilio blueprint)."""

from __future__ import annotations

from telephony.webhooks import bp  # noqa: F401
