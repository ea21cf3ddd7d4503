"""Alembic environment: the URL comes from ``callguard db upgrade`` (DATABASE_URL).
Settings are read through ``telephony.config`` (its table holds their defaults).

Each migration runs in a transaction of its own, and on PostgreSQL waits at most
``MIGRATION_LOCK_TIMEOUT`` (default 3 s) for a lock: a release run while the previous release
serves never queues every caller's query behind an ``ALTER TABLE`` waiting on a busy table, and
it never holds one migration's locks while the next waits (that deadlocked under load).
``callguard db upgrade`` tries again, from the migration that gave up, after a pause.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from restrictions.models import Base
from telephony.config import from_environment

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url: str = config.get_main_option("sqlalchemy.url") or from_environment("DATABASE_URL")
    return url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            timeout = from_environment("MIGRATION_LOCK_TIMEOUT")
            connection.exec_driver_sql("SELECT set_config('lock_timeout', %s, false)", (timeout,))
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
