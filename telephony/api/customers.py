"""JSON API: customers and their restrictions."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from restrictions.decisions import clashes
from restrictions.lifecycle import (
    add_restriction,
    create_customer,
    get_customer,
    update_customer,
)
from restrictions.models import Role
from restrictions.records import customer_record
from telephony.api import bp, json_body, serialize
from telephony.auth import api_role, current_actor
from telephony.database import session


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
    )
    sess.commit()
    return jsonify(serialize.customer(customer)), 201


@bp.get("/customers/<path:reference>")
@api_role(Role.AGENT)
def show(reference: str) -> Any:
    sess = session()
    customer = get_customer(sess, reference)
    record = customer_record(sess, customer, audit_entries=50)
    return jsonify(
        serialize.customer(customer, calls=record.calls, audit=record.audit, actions=record.actions)
    )


@bp.patch("/customers/<path:reference>")
@api_role(Role.SUPERVISOR)
def update(reference: str) -> Any:
    body = json_body()
    sess = session()
    customer = get_customer(sess, reference)
    update_customer(
        sess,
        current_actor(),
        customer,
        name=body.get("name"),
        phone_numbers=body.get("phone_numbers"),
        language=body.get("language"),
        adjustments=body.get("adjustments"),
    )
    sess.commit()
    return jsonify(serialize.customer(customer))


@bp.post("/customers/<path:reference>/restrictions")
@api_role(Role.SUPERVISOR)
def restrict(reference: str) -> Any:
    body = json_body()
    sess = session()
    customer = get_customer(sess, reference)
    restriction = add_restriction(sess, current_actor(), customer, body)
    sess.commit()
    return jsonify({**serialize.restriction(restriction), "warnings": clashes(restriction)}), 201
