"""Staff pages: sign-in, the supervisor's review queues and the agent console."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    # A customer's record and a restriction's life: pages on the supervisor blueprint, so they
    # are added to it before it is registered.
    import telephony.pages.customers  # noqa: F401
    from telephony.pages import agent, auth, incidents, staff, supervisor, voicemails, words

    words.register(app)  # codes in words, for every page's templates
    app.register_blueprint(auth.bp)
    app.register_blueprint(supervisor.bp)
    app.register_blueprint(agent.bp)
    app.register_blueprint(incidents.bp)
    app.register_blueprint(voicemails.bp)
    app.register_blueprint(staff.bp)
