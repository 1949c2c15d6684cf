"""Migrations are the schema: after `upgrade head` the database matches the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from idp.db import alembic_config, for_dialect, make_engine
from idp.models import Base


def test_models_and_migrations_agree(backend):
    engine = make_engine(backend[0])
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "compare_type": True, "include_object": for_dialect(connection.dialect.name)})
        diff = compare_metadata(context, Base.metadata)
        current = context.get_current_revision()
    engine.dispose()
    assert diff == [], f"models differ from migrations: {diff}"
    assert current == ScriptDirectory.from_config(alembic_config(backend[0])).get_current_head()


def test_migrations_form_one_line(backend):
    script = ScriptDirectory.from_config(alembic_config(backend[0]))
    assert len(script.get_heads()) == 1
