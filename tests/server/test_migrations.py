"""Alembic migrations are the schema: they match the models and go down again."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from dialtone.server.db import alembic_config
from dialtone.server.models import Base


def test_migrations_match_the_models(db):
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_downgrade_and_upgrade_again(db):
    with db.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    db.upgrade()
    tables = set(inspect(db.engine).get_table_names())
    assert {"lines", "calls", "call_events", "sign_in_attempts"} <= tables


def test_upgrade_is_idempotent(db):
    db.upgrade()
    db.upgrade()
