"""Reads of sensitive data are in the audit log, committed even by a GET: a full ID number shown (not a masked
one), each report, settlement and frozen-report download, a confirmation card printed, a refused confirmation
code, a matching run. The events say what was read, never a secret."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select

from servicehub import crypto
from servicehub.auth.audit import first_broken_audit_link
from servicehub.auth.models import AuditLog
from servicehub.database import clock_at
from servicehub.extensions import db
from servicehub.registry.models import Contract
from servicehub.visits.models import ConfirmationCard
from tests.registry.test_pages import signed_in
from tests.scheduling.fixtures import district_today, inline, served  # noqa: F401 - fixtures
from tests.visits.evv import check_in, check_out, day, wrong_code  # noqa: F401 - fixture


def events(app, action: str) -> list[dict]:
    """The audit log's rows of `action`, oldest first, as a fresh session reads them (only what was committed)."""
    with app.app_context():
        rows = db.session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)).all()
        return [{"actor": r.actor, "actor_id": r.actor_id, "entity_type": r.entity_type, "entity_id": r.entity_id,
                 "changes": r.changes} for r in rows]


def test_a_full_id_number_shown_is_in_the_audit_log_and_a_masked_one_is_not(app, client, served):  # noqa: F811 - fixtures
    recipient = served["recipients"][0]
    before = len(events(app, "id_number_shown"))  # the fixture's registrations answered with full numbers
    one = client.get(f"/api/v1/recipients/{recipient}", headers=served["manager"])
    assert one.status_code == 200 and "*" not in one.get_json()["id_number"]
    [shown] = events(app, "id_number_shown")[before:]
    assert shown["entity_type"] == "recipients" and shown["entity_id"] == str(recipient)
    assert shown["changes"] == {"recipient_ids": [recipient]} and shown["actor"] == "manager"
    assert one.get_json()["id_number"] not in json.dumps(shown["changes"])

    listed = client.get("/api/v1/recipients?page_size=3", headers=served["manager"])
    assert listed.status_code == 200
    ids = [r["id"] for r in listed.get_json()]
    assert len(ids) == 3 and events(app, "id_number_shown")[-1]["changes"] == {"recipient_ids": ids}

    for who in ("auditor", "provider"):  # masked: nothing read that the log must tell of
        masked = client.get(f"/api/v1/recipients/{recipient}", headers=served[who])
        assert masked.status_code == 200 and "*" in masked.get_json()["id_number"]
    assert len(events(app, "id_number_shown")) == before + 2

    page = signed_in(app, "manager").get(f"/recipients/{recipient}")
    assert page.status_code == 200
    assert events(app, "id_number_shown")[-1]["changes"] == {"recipient_ids": [recipient]}
    assert len(events(app, "id_number_shown")) == before + 3
    with app.app_context():  # written by reads (an API GET on PostgreSQL runs without a transaction) in the chain
        chained = db.session.execute(select(AuditLog.__table__).order_by(AuditLog.sequence)).mappings().all()
        assert first_broken_audit_link(chained) is None


def test_every_download_of_a_report_settlement_or_frozen_report_is_in_the_audit_log(app, client, served):  # noqa: F811 - fixtures
    today = district_today()
    first, last = today.replace(day=1), today
    kpis = client.get(f"/api/v1/reports/kpis/export?format=csv&from={first}&to={last}&group_by=service_type",
                      headers=served["auditor"])
    assert kpis.status_code == 200
    [report] = events(app, "export_downloaded")
    assert report["entity_type"] == "reports" and report["actor"] == "auditor"
    assert report["changes"] | {"records": 0} == {"export": "kpi_report", "format": "csv", "first": first.isoformat(),
                                                  "last": last.isoformat(), "group_by": ["service_type"],
                                                  "filters": {}, "records": 0}

    with app.app_context():
        contract = db.session.scalar(select(Contract.id).where(Contract.organisation_id == served["org"]))
    month = today.strftime("%Y-%m")
    settlement = client.get(f"/api/v1/contracts/{contract}/settlement/export?format=xlsx&month={month}",
                            headers=served["manager"])
    assert settlement.status_code == 200
    assert events(app, "export_downloaded")[-1]["entity_type"] == "contracts"
    assert events(app, "export_downloaded")[-1]["entity_id"] == str(contract)
    assert events(app, "export_downloaded")[-1]["changes"]["format"] == "xlsx"
    assert events(app, "export_downloaded")[-1]["changes"]["month"] == month

    next_month = (today.replace(day=28) + timedelta(days=4)).replace(day=1)
    with clock_at(datetime.combine(next_month, time(9), ZoneInfo("Asia/Shanghai"))):
        frozen = client.post("/api/v1/reports/frozen", headers=served["manager"], json={
            "contract_id": contract, "month": month, "accept_open_exceptions": True})
        assert frozen.status_code == 201, frozen.get_json()
        frozen_id = frozen.get_json()["id"]
        download = client.get(f"/api/v1/reports/frozen/{frozen_id}/export?format=csv", headers=served["provider"])
    assert download.status_code == 200
    last_event = events(app, "export_downloaded")[-1]
    assert (last_event["entity_type"], last_event["entity_id"]) == ("frozen_reports", str(frozen_id))
    assert last_event["changes"]["export"] == "frozen_report" and last_event["changes"]["first"] == first.isoformat()

    refused = client.get(f"/api/v1/reports/kpis/export?format=pdf&from={last}&to={first - timedelta(days=1)}",
                         headers=served["auditor"])
    assert refused.status_code == 422
    assert len(events(app, "export_downloaded")) == 3  # a refused export read nothing


def test_a_printed_card_is_in_the_audit_log_without_its_secret(app, client, served):  # noqa: F811 - fixtures
    recipient = served["recipients"][1]
    printed = client.post(f"/api/v1/recipients/{recipient}/confirmation-cards", headers=served["provider"])
    assert printed.status_code == 201 and printed.mimetype == "application/pdf"
    [event] = events(app, "card_printed")
    assert (event["entity_type"], event["entity_id"]) == ("recipients", str(recipient))
    assert event["changes"]["card_no"] == 1 and event["changes"]["format"] == "pdf"
    with app.app_context():
        card = db.session.scalar(select(ConfirmationCard).where(ConfirmationCard.recipient_id == recipient))
        secret = crypto.decrypt(current_app.config["SERVICEHUB_DATA_KEY"], card.secret_encrypted)
        logged = json.dumps([row.changes for row in db.session.scalars(select(AuditLog))])
    assert secret not in logged


def test_a_refused_confirmation_code_is_in_the_audit_log_without_the_code(app, client, served, day):  # noqa: F811 - fixtures
    stop = day["mine"][0]
    with clock_at(stop.start + timedelta(minutes=2)):
        assert check_in(client, served, stop).status_code == 201
    with clock_at(stop.start + timedelta(minutes=58)) as now:
        code = wrong_code(stop.secret, now)
        refused = check_out(client, served, stop, now, confirmation_code=code)
    assert refused.status_code == 422
    [event] = events(app, "confirmation_refused")
    assert (event["entity_type"], event["entity_id"]) == ("visits", str(stop.id))
    assert event["changes"]["outcome"] == "wrong" and event["changes"]["tries"] == 1
    assert event["changes"]["recipient_id"] == stop.recipient_id and event["changes"]["card_no"] == 1
    assert code not in json.dumps(event["changes"]) and event["actor"] == "caregiver"


def test_a_matching_run_is_in_the_audit_log(app, client, served):  # noqa: F811 - fixtures
    before = len(events(app, "matching_run"))  # the fixture's own runs
    run = client.post("/api/v1/matching/runs", json={}, headers=served["manager"])
    assert run.status_code == 201, run.get_json()
    event = events(app, "matching_run")[-1]
    assert len(events(app, "matching_run")) == before + 1
    assert (event["entity_type"], event["entity_id"]) == ("matching_runs", str(run.get_json()["id"]))
    assert event["changes"]["needs_considered"] == run.get_json()["needs_considered"]
    assert event["actor"] == "manager"
