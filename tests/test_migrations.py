"""Migrations: they build an empty database on both engines, go down and up again, and match the models."""

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from servicehub import create_app
from servicehub.extensions import db
from tests.conftest import TEST_CONFIG
from tests.support import fresh_database


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migrations_upgrade_an_empty_database_and_match_the_models(kind, tmp_path):
    with fresh_database(kind, tmp_path) as url:
        app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(tmp_path)})
        with app.app_context():
            flask_migrate.upgrade()
            head = ScriptDirectory.from_config(
                app.extensions["migrate"].migrate.get_config()
            ).get_current_head()
            with db.engine.connect() as conn:
                assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head
                diff = compare_metadata(
                    MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata
                )
            assert diff == [], f"models and migrations differ: {diff}"
            # Autogenerate does not compare CHECK constraints; hand-written ones must match too.
            inspector = sa.inspect(db.engine)
            for table in db.metadata.sorted_tables:
                declared = {c.name for c in table.constraints if isinstance(c, sa.CheckConstraint)}
                present = {c["name"] for c in inspector.get_check_constraints(table.name)}
                assert declared == present, f"{table.name}: CHECK constraints differ: {declared ^ present}"
            flask_migrate.downgrade(revision="base")
            assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
            flask_migrate.upgrade()
            assert "service_types" in sa.inspect(db.engine).get_table_names()
            db.engine.dispose()
