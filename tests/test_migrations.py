"""The Alembic migration builds exactly the schema the models describe, and can be undone."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, make_url, text

from restrictions.models import Base
from telephony.cli import alembic_config


def test_the_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert differences == []


@pytest.mark.slow
def test_upgrade_downgrade_upgrade_on_a_scratch_database(database_url: str) -> None:
    from alembic import command

    url = make_url(database_url)
    scratch = url.set(database=f"{url.database}_scratch")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch.database}"'))
        conn.execute(text(f'CREATE DATABASE "{scratch.database}"'))
    try:
        cfg = alembic_config(scratch.render_as_string(hide_password=False))
        command.upgrade(cfg, "head")  # type: ignore[arg-type]
        command.downgrade(cfg, "base")  # type: ignore[arg-type]
        command.upgrade(cfg, "head")  # type: ignore[arg-type]
        engine = create_engine(scratch)
        with engine.connect() as conn:
            tables = set(
                conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
            )
        engine.dispose()
        assert {"customers", "restrictions", "calls", "audit_entries"} <= tables
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)'))
        admin.dispose()
