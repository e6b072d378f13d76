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


def _clear_phones() -> dict:
    """Every person's phones in clear, as the app reads them: {(table, id): {name: number}}."""
    from servicehub.intake.models import Application
    from servicehub.registry.models import Recipient, Worker
    from servicehub.registry.services import phone_in_clear

    kinds = ((Recipient, ("phone", "family_carer_phone")), (Worker, ("phone",)),
             (Application, ("phone", "contact_phone")))
    return {(model.__tablename__, row.id): {name: phone_in_clear(row, name) for name in names}
            for model, names in kinds for row in db.session.scalars(sa.select(model))}


def _raw(table: str) -> dict:
    return {row["id"]: dict(row) for row in db.session.execute(sa.text(f"SELECT * FROM {table}")).mappings()}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_phones_migration_encrypts_every_number_and_its_downgrade_gives_them_back(kind, tmp_path):
    from servicehub.intake.models import Source
    from servicehub.intake.services import file_demo_application
    from servicehub.registry.demo_loader import PARTS
    from servicehub.registry.services import phone_lookup_hash
    from tests.registry.factories import DAGANG
    from tests.support import load_demo_district

    with fresh_database(kind, tmp_path) as url:
        app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(tmp_path)})
        with app.app_context():
            flask_migrate.upgrade()
            load_demo_district(tuple(p for p in PARTS if p != "needs"))
            file_demo_application({"name": "王阿姨", "phone": "+86 138 0013 8000", "area": DAGANG,
                                   "situation": "独居", "help_text": "助餐", "contact_phone": "0511-88886666"},
                                  Source.PHONE)
            before = _clear_phones()
            numbers = [n for phones in before.values() for n in phones.values() if n]
            assert len(numbers) > 150 and any("-" in n for n in numbers)  # mobiles and landlines
            db.session.remove()

            flask_migrate.downgrade(revision="0018_chained_audit_log")
            for table in ("recipients", "workers", "applications"):
                for row_id, row in _raw(table).items():
                    assert {name: row[name] for name in before[(table, row_id)]} == before[(table, row_id)]
                    assert not [column for column in row if "phone_" in column]
            db.session.remove()

            flask_migrate.upgrade()
            assert _clear_phones() == before
            for table in ("recipients", "workers", "applications"):
                for row_id, row in _raw(table).items():
                    held = " ".join(str(v) for v in row.values())
                    for name, number in before[(table, row_id)].items():
                        assert name not in row and (not number or number not in held)
                        assert row[f"{name}_hash"] == phone_lookup_hash(number)
                        assert row[f"{name}_masked"] == (number[:3] + "****" + number[-4:] if number else "")
            db.session.remove()
            db.engine.dispose()
