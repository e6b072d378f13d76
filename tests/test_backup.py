"""Backups: a round trip on both engines brings back exactly what was backed up (rows, the ledger's hash chains
and its append-only trigger), a damaged backup is refused before anything is replaced, old backups are
pruned, and the commands say what they did."""

import os
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from servicehub import backup
from servicehub.auth.permissions import Principal, Role
from servicehub.errors import ValidationFailed
from servicehub.extensions import db
from servicehub.visits import services as records
from servicehub.visits.models import RecordKind, ServiceRecord
from tests.evaluation.conftest import history  # noqa: F401 - fixture
from tests.scheduling.fixtures import inline, served  # noqa: F401 - fixtures


def correct_one(history) -> None:  # noqa: F811 - the fixture's value
    delivery = db.session.scalars(select(ServiceRecord).where(ServiceRecord.kind == RecordKind.DELIVERY)).first()
    provider = Principal(user_id=None, username="p", role=Role.PROVIDER_ADMIN, organisation_id=history["org"])
    records.correct(provider, delivery.id, str(uuid.uuid4()),
                    {"reason_code": "wrong_tasks", "notes": "回访核实，更正服务项目", "tasks": delivery.tasks[:1]})


def test_a_backup_restores_exactly_what_it_held(app, history, tmp_path):  # noqa: F811
    with app.app_context():
        umask = os.umask(0o022)  # the usual umask: a file made without care would be readable by everyone
        try:
            made = backup.make_backup(tmp_path)
        finally:
            os.umask(umask)
        assert made["counts"]["service_records"] > 100 and made["revision"]
        assert (tmp_path / made["file"]).stat().st_mode & 0o777 == 0o600
        correct_one(history)  # written after the backup: gone after the restore
        after = db.session.scalar(select(func.count(ServiceRecord.id)))
        assert after == made["counts"]["service_records"] + 1
        restored = backup.restore_backup(tmp_path / made["file"])
        assert restored["counts"] == made["counts"]
        assert db.session.scalar(select(func.count(ServiceRecord.id))) == made["counts"]["service_records"]
        assert all(result["ok"] for result in records.verify_ledgers())
        with pytest.raises(sa.exc.DBAPIError):  # the ledger is still append-only
            db.session.execute(sa.update(ServiceRecord).values(notes="changed"))
            db.session.flush()
        db.session.rollback()


def test_a_damaged_backup_is_refused_before_anything_is_replaced(app, history, tmp_path):  # noqa: F811
    with app.app_context():
        made = backup.make_backup(tmp_path)
        path = tmp_path / made["file"]
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        correct_one(history)
        with pytest.raises(ValidationFailed) as refused:
            backup.restore_backup(path)
        assert "backup" in refused.value.errors
        assert db.session.scalar(select(func.count(ServiceRecord.id))) == made["counts"]["service_records"] + 1


def test_old_backups_are_pruned(app, demo, tmp_path):
    with app.app_context():
        names = [backup.make_backup(tmp_path)["file"] for _ in range(3)]
        last = backup.make_backup(tmp_path, keep=2)
    assert last["removed"] == names[:2]
    assert sorted(p.name for p in tmp_path.glob("servicehub-*") if not p.name.endswith(".json")) == \
        sorted([names[2], last["file"]])


def test_the_commands_back_up_and_restore_with_a_yes(app, runner, demo, tmp_path):
    made = runner.invoke(args=["backup", "--directory", str(tmp_path)])
    assert made.exit_code == 0, made.output
    path = next(p for p in tmp_path.glob("servicehub-*") if not p.name.endswith(".json"))
    assert path.name in made.output and "sha256" in made.output
    refused = runner.invoke(args=["restore", str(path)])
    assert refused.exit_code != 0 and "--yes" in refused.output
    restored = runner.invoke(args=["restore", str(path), "--yes"])
    assert restored.exit_code == 0, restored.output
    assert f"restored {path.name}" in restored.output
