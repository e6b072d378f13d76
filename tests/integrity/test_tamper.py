"""Tamper trials, as an insider with the database's keys would try them: every one is found by
`servicehub audit verify --checkpoints DIR` after a checkpoint taken before the tampering, and an untouched database
passes. Both engines."""

from __future__ import annotations

import base64
import os
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa

from servicehub.auth.permissions import COMMAND_LINE
from servicehub.database import append_only_ddl, clock_at
from servicehub.evaluation import services as evaluation
from servicehub.extensions import db
from servicehub.registry.models import Contract
from servicehub.visits import ledger
from servicehub.visits.models import ServiceRecord
from tests.visits.evv import deliver

APPEND_ONLY = ("service_records", "frozen_reports", "audit_log")


@pytest.fixture
def recorded(app, served, client, day, tmp_path):
    """The caregiver's visits delivered, this month frozen (as if next month had come), and a checkpoint taken."""
    for stop in day["mine"]:
        deliver(client, served, stop)
    with app.app_context():
        contract = db.session.scalar(sa.select(Contract.id).where(Contract.organisation_id == served["org"]))
        today = day["mine"][0].start.date()
        with clock_at(day["mine"][0].start + timedelta(days=40)):
            evaluation.freeze_contract_month(COMMAND_LINE, contract, f"{today:%Y-%m}", accept_open_exceptions=True)
    folder = tmp_path / "checkpoints"
    taken = invoke(app, "checkpoint", "--out", str(folder))
    assert taken.exit_code == 0, taken.output
    return {"folder": folder, "org": served["org"], "stops": day["mine"], "others": day["others"]}


def invoke(app, *args):
    return app.test_cli_runner().invoke(args=["audit", *args])


def verify(app, recorded, *extra):
    return invoke(app, "verify", "--checkpoints", str(recorded["folder"]), *extra)


@contextmanager
def tampering(app):
    """A connection with the append-only triggers dropped (as the database's owner could), restored afterwards."""
    with app.app_context():
        dialect = db.engine.dialect.name
        with db.engine.begin() as conn:
            for table in APPEND_ONLY:
                for statement in append_only_ddl(dialect, table)[1]:
                    conn.execute(sa.text(statement))
        try:
            with db.engine.connect() as conn:
                if dialect == "sqlite":  # foreign keys off (outside a transaction, on the driver's connection)
                    conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
                try:
                    with conn.begin():
                        if dialect == "postgresql":
                            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
                        yield conn
                finally:
                    if dialect == "sqlite":
                        conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
        finally:
            with db.engine.begin() as conn:
                for table in APPEND_ONLY:
                    for statement in append_only_ddl(dialect, table)[0]:
                        conn.execute(sa.text(statement))


def records_of(conn, org):
    """One organisation's records as the application reads them (typed: times, JSON), in sequence order."""
    records = ServiceRecord.__table__
    return conn.execute(sa.select(records).where(records.c.organisation_id == org)
                        .order_by(records.c.sequence)).mappings().all()


def assert_found(result, *phrases):
    assert result.exit_code == 1, result.output
    broken = [line for line in result.output.splitlines() if line.startswith("BROKEN")]
    for phrase in phrases:
        assert any(phrase in line for line in broken), (phrase, result.output)


def test_an_untouched_database_passes(app, recorded):
    result = verify(app, recorded)
    assert result.exit_code == 0, result.output
    assert "1 checkpoints checked" in result.output and "everything holds" in result.output
    assert "BROKEN" not in result.output


def test_a_changed_field_is_found(app, recorded):
    with tampering(app) as conn:
        conn.execute(sa.text("UPDATE service_records SET satisfaction = 1 WHERE organisation_id = :org AND "
                             "sequence = 2"), {"org": recorded["org"]})
    assert_found(verify(app, recorded), f"organisation {recorded['org']}'s service records: broken at record #2",
                 "content was changed")


def test_a_deleted_record_is_found(app, recorded):
    with tampering(app) as conn:
        conn.execute(sa.text("DELETE FROM service_records WHERE organisation_id = :org AND sequence = 3"),
                     {"org": recorded["org"]})
    assert_found(verify(app, recorded), "record 3 is missing")


def test_reordered_records_are_found(app, recorded):
    with tampering(app) as conn:
        rows = records_of(conn, recorded["org"])
        first, second = rows[1]["id"], rows[2]["id"]
        # Swap the places of two records (through a free number: the pair is unique).
        for record_id, sequence in ((first, 10_000), (second, 2), (first, 3)):
            conn.execute(sa.text("UPDATE service_records SET sequence = :seq WHERE id = :id"),
                         {"seq": sequence, "id": record_id})
    assert_found(verify(app, recorded), "broken at record #2")


def test_a_rewrite_with_every_later_hash_recomputed_is_found_only_by_the_checkpoint(app, recorded):
    with tampering(app) as conn:
        rows = [dict(row) for row in records_of(conn, recorded["org"])]
        rows[1]["satisfaction"] = 1
        previous = rows[0]["hash"]
        for row in rows[1:]:
            row["prev_hash"] = previous
            row["hash"] = previous = ledger.record_hash(row, previous)
            conn.execute(sa.text("UPDATE service_records SET satisfaction = :satisfaction, prev_hash = :prev_hash, "
                                 "hash = :hash WHERE id = :id"), row)
    without = invoke(app, "verify", "--checkpoints", str(recorded["folder"].parent / "none-taken"))
    assert without.exit_code == 1 and "No such folder" in without.output
    result = verify(app, recorded)
    assert_found(result, f"record #{len(rows)} is not the one the checkpoint")
    # The chain alone holds (no link is broken): only the signed head kept outside finds it, and it is not "intact".
    assert "broken at record" not in result.output
    assert f"organisation {recorded['org']}: " not in result.output


def test_a_cut_tail_is_found(app, recorded):
    with tampering(app) as conn:
        head = len(records_of(conn, recorded["org"]))
        conn.execute(sa.text("DELETE FROM service_records WHERE organisation_id = :org AND sequence >= :seq"),
                     {"org": recorded["org"], "seq": head - 1})
    assert_found(verify(app, recorded), "the chain is behind the checkpoint", f"it saw {head} records")


def test_a_deleted_chain_is_found(app, recorded):
    with tampering(app) as conn:
        conn.execute(sa.text("DELETE FROM service_records WHERE organisation_id = :org"), {"org": recorded["org"]})
    assert_found(verify(app, recorded), f"organisation {recorded['org']}'s service records: the chain is gone")


def test_a_replaced_frozen_report_is_found(app, recorded):
    with tampering(app) as conn:
        conn.execute(sa.text("UPDATE frozen_reports SET generated_by = 'insider', record_count = record_count + 1"))
    assert_found(verify(app, recorded), "frozen report", "changed since the checkpoint")


def test_a_deleted_frozen_report_is_found(app, recorded):
    with tampering(app) as conn:
        conn.execute(sa.text("DELETE FROM frozen_reports"))
    assert_found(verify(app, recorded), "frozen report", "gone (the checkpoint")


def test_deleted_audit_log_rows_are_found(app, recorded):
    with tampering(app) as conn:
        conn.execute(sa.text("DELETE FROM audit_log WHERE sequence IN (3, 4)"))
    assert_found(verify(app, recorded), "the audit log: broken at entry #3", "record 3 is missing")


def test_a_cut_audit_log_is_found(app, recorded):
    with tampering(app) as conn:
        head = conn.execute(sa.text("SELECT max(sequence) FROM audit_log")).scalar()
        conn.execute(sa.text("DELETE FROM audit_log WHERE sequence > :seq"), {"seq": head - 5})
    assert_found(verify(app, recorded), "the audit log: the chain is behind the checkpoint")


def test_changed_delivery_columns_and_status_are_found_from_the_ledger(app, recorded):
    done, other = recorded["stops"][0].id, recorded["stops"][1].id
    with tampering(app) as conn:
        conn.execute(sa.text("UPDATE visits SET delivery_service_s = 7200 WHERE id = :id"), {"id": done})
        conn.execute(sa.text("UPDATE visits SET status = 'missed' WHERE id = :id"), {"id": other})
        planned = conn.execute(sa.text("SELECT id FROM visits WHERE status = 'published' ORDER BY id")).scalar()
        conn.execute(sa.text("UPDATE visits SET status = 'completed' WHERE id = :id"), {"id": planned})
    assert_found(verify(app, recorded), f"visit {done}: delivery_service_s is 7200.0",
                 f"visit {other}: status is missed, the ledger says completed",
                 f"visit {planned}: status is completed, the ledger holds no entry for it")


def test_an_edited_checkpoint_and_one_signed_by_another_key_are_refused(app, recorded, tmp_path):
    (path,) = recorded["folder"].iterdir()
    path.write_text(path.read_text().replace('"records": ', '"records": 1', 1))
    assert_found(verify(app, recorded), f"{path.name}: its signature does not hold")
    other = tmp_path / "other-instance"
    with app.app_context():
        key = app.config.get("SERVICEHUB_LEDGER_KEY")
        app.config["SERVICEHUB_LEDGER_KEY"] = base64.b64encode(bytes(range(32))).decode()  # another key
        try:
            assert invoke(app, "checkpoint", "--out", str(other)).exit_code == 0
        finally:
            app.config["SERVICEHUB_LEDGER_KEY"] = key
    result = invoke(app, "verify", "--checkpoints", str(other))
    assert_found(result, "signed by another key")


def test_a_database_restored_from_an_older_backup_is_behind_the_checkpoint(app, recorded, client, served, tmp_path):
    """Records written after the backup, a checkpoint taken, then the backup restored: behind, not intact."""
    backup = tmp_path / "backup"
    assert app.test_cli_runner().invoke(args=["backup", "--directory", str(backup)]).exit_code == 0
    missed = client.post(f"/api/v1/visits/{recorded['others'][0]}/outcome", json={"outcome": "missed",
                         "reason": "not_home"}, headers={**served["provider"], "Idempotency-Key": "after-backup"})
    assert missed.status_code == 201, missed.get_json()
    assert invoke(app, "checkpoint", "--out", str(recorded["folder"])).exit_code == 0
    (copy,) = [path for path in backup.iterdir() if path.suffix != ".json"]
    restored = app.test_cli_runner().invoke(args=["restore", str(copy), "--yes"])
    assert restored.exit_code == 0, restored.output
    result = verify(app, recorded)
    assert_found(result, f"organisation {recorded['org']}'s service records: the chain is behind the checkpoint",
                 "the audit log: the chain is behind the checkpoint")
    assert f"organisation {recorded['org']}: " not in result.output  # not "intact"


def test_a_key_file_others_can_read_is_refused(app, tmp_path):
    with app.app_context():
        path = os.path.join(app.instance_path, "ledger_key")
        invoke(app, "public-key")
        assert os.stat(path).st_mode & 0o777 == 0o600
        os.chmod(path, 0o644)
        try:
            result = invoke(app, "checkpoint", "--out", str(tmp_path))
            assert result.exit_code == 1 and "mode 0644" in result.output and "chmod 600" in result.output
        finally:
            os.chmod(path, 0o600)
