"""JSON API: customers and their restrictions."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify

from restrictions import attach, sent_letters
from restrictions.lifecycle import (
    add_restriction,
    clashes,
    create_customer,
    get_customer,
    update_customer,
)
from restrictions.models import Role
from restrictions.records import customer_record
from telephony import letters
from telephony.api import bp, json_body, serialize
from telephony.auth import api_role, current_actor
from telephony.config import current_settings
from telephony.database import session
from telephony.redis_store import redis_client


@bp.post("/customers")
@api_role(Role.SUPERVISOR)
def create() -> Any:
    body = json_body()
    sess = session()
    customer = create_customer(
        sess,
        current_actor(),
        reference=body.get("reference"),
        name=body.get("name"),
        phone_numbers=body.get("phone_numbers"),
        language=body.get("language"),
        adjustments=body.get("adjustments"),
        postal_address=body.get("postal_address"),
    )
    sess.commit()
    return jsonify(serialize.customer(customer, sensitive=True)), 201


@bp.get("/customers/<path:reference>")
@api_role(Role.AGENT)
def show(reference: str) -> Any:
    sess = session()
    customer = get_customer(sess, reference)
    record = customer_record(sess, customer, audit_entries=50)
    return jsonify(
        serialize.customer(
            customer,
            calls=record.calls,
            audit=record.audit,
            actions=record.actions,
            letters=sent_letters.for_customer(sess, customer.id),
            # the sensitive note is for supervisors: an agent's answer never holds it
            sensitive=g.user.role_enum.may(Role.SUPERVISOR),
        )
    )


@bp.patch("/customers/<path:reference>")
@api_role(Role.SUPERVISOR)
def update(reference: str) -> Any:
    sess = session()
    customer = get_customer(sess, reference)  # a 404 before the body's 422
    body = json_body()  # its shape: CustomerChanges (telephony.api.shapes.bodies)
    past_calls = body.get("attach_past_calls")
    update_customer(
        sess,
        current_actor(),
        customer,
        name=body.get("name"),
        phone_numbers=body.get("phone_numbers"),
        language=body.get("language"),
        adjustments=body.get("adjustments"),
        postal_address=body.get("postal_address"),
    )
    if past_calls:  # the past calls from their numbers that nobody was attached to are theirs
        attach.attach_past_calls(
            sess,
            redis_client(),
            current_settings(),
            current_actor(),
            customer,
            reason=body.get("reason"),
        )
    sess.commit()
    return jsonify(serialize.customer(customer, sensitive=True))


@bp.post("/customers/<path:reference>/numbers")
@api_role(Role.SUPERVISOR)
def add_number(reference: str) -> Any:
    """A number is the customer's, and so are its past calls nobody was attached to."""
    sess = session()
    customer = get_customer(sess, reference)
    body = json_body()
    done = attach.attach_number(
        sess,
        redis_client(),
        current_settings(),
        current_actor(),
        customer,
        body.get("number"),
        reason=body.get("reason"),
    )
    sess.commit()
    return jsonify(serialize.attached(done))


@bp.post("/customers/<path:reference>/restrictions")
@api_role(Role.SUPERVISOR)
def restrict(reference: str) -> Any:
    sess = session()
    customer = get_customer(sess, reference)
    body = json_body()
    restriction = add_restriction(sess, current_actor(), customer, body, today=letters.today())
    letters.keep_notice_given(sess, current_actor(), restriction)  # recorded as sent already
    sess.commit()
    return jsonify({**serialize.restriction(restriction), "warnings": clashes(restriction)}), 201
