"""JSON API: a restriction's information shared with other agencies (policy 10.1)."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from restrictions import sharing
from restrictions.lifecycle import get_restriction
from restrictions.models import Role
from telephony import letters
from telephony.api import bp, json_body, serialize
from telephony.auth import api_role, current_actor
from telephony.database import session


@bp.post("/restrictions/<id:restriction_id>/sharing")
@api_role(Role.SUPERVISOR)
def share(restriction_id: int) -> Any:
    """``{shared_with, shared_on, purpose, lawful_basis}`` → 201 with the record; it is listed
    on the restriction (``sharing``) and audited."""
    sess = session()
    restriction = get_restriction(sess, restriction_id, for_decision=True)
    body = json_body()
    record = sharing.record_sharing(sess, current_actor(), restriction, body, today=letters.today())
    sess.commit()
    return jsonify(serialize.sharing_record(record)), 201
