"""The ``callguard`` command line (CONTRACT.md), built on Flask's Click integration."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from restrictions.db import database, session
from restrictions.errors import DomainError

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def _create_app() -> object:
    from telephony import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False)
def main() -> None:
    """callguard: restrictions applied on the phone line."""


def alembic_config(url: str) -> object:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Apply the Alembic migrations."""
    from alembic import command

    command.upgrade(alembic_config(current_app.config["DATABASE_URL"]), revision)  # type: ignore[arg-type]
    click.echo(
        f"database at {database().engine.url.render_as_string(hide_password=True)} is at {revision}"
    )


@main.group()
def users() -> None:
    """Staff users."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["agent", "supervisor", "admin"]), required=True)
@click.option("--password", default=None, help="Password for the pages (omit for API-only users).")
@with_appcontext
def users_add(name: str, role: str, password: str | None) -> None:
    """Create a staff user and print its API token once, alone on the last line."""
    from telephony.auth import create_user

    sess = session()
    try:
        user, token = create_user(sess, name, role, password)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    sess.commit()
    click.echo(f"created {user.role} {user.name!r}; their API token (shown only now):")
    click.echo(token)


@main.command("worker")
@click.option("--with-scheduler", is_flag=True, help="Also run rq's scheduler (periodic scans).")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@with_appcontext
def worker(with_scheduler: bool, burst: bool) -> None:
    """Run an rq worker for callguard's queue inside this app."""
    from rq import SimpleWorker

    from telephony.redis_store import queue

    q = queue()
    if not q.is_async:
        raise click.ClickException("REDIS_URL is not set: jobs already run inline")
    ok = SimpleWorker([q], connection=q.connection).work(with_scheduler=with_scheduler, burst=burst)
    sys.exit(0 if ok or burst else 1)


@main.group()
def counters() -> None:
    """Redis counters and caches."""


@counters.command("rebuild")
@with_appcontext
def counters_rebuild() -> None:
    """Rebuild Redis counters and the routing cache from PostgreSQL."""
    from restrictions import cache, counting
    from telephony.redis_store import redis_client

    sess = session()
    redis = redis_client()
    numbers = cache.rebuild(sess, redis)
    calls = counting.rebuild(sess, redis)
    click.echo(f"routing cache: {numbers} numbers; contact counters: {calls} calls")
