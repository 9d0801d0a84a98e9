"""The migrations build exactly the schema the models declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from item_bank.db import Base
from testing_center.extensions import db


def test_migrations_match_models(app):
    """After `db upgrade`, comparing the database with the models finds no difference."""
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_constraints_are_named(app):
    """Every constraint has a name from the naming convention (Alembic can alter it)."""
    for table in Base.metadata.sorted_tables:
        for constraint in table.constraints:
            assert constraint.name, (table.name, constraint)
