"""KPI reports over a real ledger: totals that match the records, drill-downs that add up to every group,
scoping, bad input, frozen monthly reports that keep reading the same after a late correction, scores."""

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import exists, func, select

from servicehub.auth.permissions import COMMAND_LINE, Principal, Role
from servicehub.evaluation import services
from servicehub.evaluation.models import FrozenReport
from servicehub.extensions import db
from servicehub.matching.services import organisation_performance
from servicehub.scheduling.models import Visit
from servicehub.visits.models import RecordKind, ServiceRecord
from tests.registry import factories as f
from tests.scheduling.fixtures import district_today


def kpis(client, who, headers, **params):
    return client.get("/api/v1/reports/kpis", query_string=params, headers=headers[who])


def period(history):
    return {"from": history["first"].isoformat(), "to": history["last"].isoformat()}


def delivered_in_ledger(app, first, last):
    with app.app_context():
        return db.session.scalar(select(func.count(Visit.id)).where(
            Visit.service_date.between(first, last), Visit.status == "completed",
            exists().where(ServiceRecord.visit_id == Visit.id, ServiceRecord.kind == RecordKind.DELIVERY)))


def test_the_total_counts_every_delivered_visit_of_the_ledger(app, client, history):
    response = kpis(client, "auditor", history, **period(history))
    assert response.status_code == 200, response.get_json()
    report = response.get_json()
    expected = delivered_in_ledger(app, history["first"], history["last"])
    assert expected > 50
    assert report["total"]["person_times"] == expected
    assert report["total"]["delivered_value_fen"] == expected * 6000  # LC02 at ¥60.00 a visit
    assert 0 < report["total"]["on_time_rate"] <= 1 and report["total"]["satisfaction_mean"] >= 1


def test_every_group_is_the_sum_of_the_records_it_drills_down_to(app, client, history):
    report = kpis(client, "auditor", history, group_by="organisation,service_type,week", **period(history)).get_json()
    assert len(report["groups"]) >= 5
    assert sum(g["figures"]["person_times"] for g in report["groups"]) == report["total"]["person_times"]
    for group in report["groups"]:
        key = group["key"]
        drilled = client.get("/api/v1/reports/records", headers=history["auditor"], query_string={
            **period(history), "organisation_id": key["organisation"], "service_type": key["service_type"],
            "granularity": "week", "bucket": key["week"]}).get_json()
        sums = drilled["sums"]
        for code in ("person_times", "missed", "delivered_value_fen"):
            assert sums[code] == group["figures"][code], (key, code)
        assert sums["service_hours"] == pytest.approx(group["figures"]["service_hours"], abs=0.01)
        assert sums["person_times"] == sum(r["person_times"] for r in drilled["records"])
        assert all(r["organisation"] == key["organisation"] for r in drilled["records"])


def test_groups_are_named(client, history):
    report = kpis(client, "auditor", history, group_by="organisation,town", **period(history)).get_json()
    organisation = str(report["groups"][0]["key"]["organisation"])
    assert report["labels"]["organisation"][organisation]["zh"]
    assert report["labels"]["town"]


def test_a_period_with_no_records_gives_zeros_with_the_period(client, history):
    report = kpis(client, "auditor", history, **{"from": "2020-01-01", "to": "2020-01-31"},
                  group_by="organisation").get_json()
    assert report["from"] == "2020-01-01" and report["to"] == "2020-01-31"
    assert report["groups"] == [] and report["total"]["person_times"] == 0 and report["total"]["missed"] == 0


@pytest.mark.parametrize(("params", "field"), [
    ({"from": "2026-11-02", "to": "2026-11-01"}, "to"),
    ({"from": "2020-01-01", "to": "2026-01-01"}, "to"),
    ({"from": "2026-11-01", "to": "2026-11-30", "group_by": "colour"}, "group_by"),
    ({"from": "2026-11-01", "to": "2026-11-30", "group_by": "month,week"}, "group_by"),
    ({"from": "2026-13-01", "to": "2026-11-30"}, "from"),
])
def test_bad_input_is_422_naming_the_field(client, auth_headers, params, field):
    response = client.get("/api/v1/reports/kpis", query_string=params, headers=auth_headers("auditor"))
    assert response.status_code == 422, response.get_json()
    assert field in str(response.get_json()["errors"])


def test_a_provider_sees_its_own_organisation_only(app, client, history):
    with app.app_context():
        other = f.organisation_ids()[1]
    refused = kpis(client, "provider", history, organisation_id=other, **period(history))
    assert refused.status_code == 403
    own = kpis(client, "provider", history, group_by="organisation", **period(history)).get_json()
    assert {g["key"]["organisation"] for g in own["groups"]} == {history["org"]}
    assert own["filters"]["organisation_id"] == history["org"]
    drilled = client.get("/api/v1/reports/records", headers=history["provider"], query_string=period(history))
    assert {r["organisation"] for r in drilled.get_json()["records"]} == {history["org"]}


def test_caregivers_get_no_reports(client, auth_headers):
    response = client.get("/api/v1/reports/kpis", query_string={"from": "2026-11-01", "to": "2026-11-02"},
                          headers=auth_headers("caregiver"))
    assert response.status_code == 403


def test_definitions_are_published(client, auth_headers):
    definitions = client.get("/api/v1/reports/definitions", headers=auth_headers("auditor")).get_json()
    assert {d["code"] for d in definitions} >= {"person_times", "missed_rate", "late_rate", "coverage"}


def late_correction(app, history, approve: bool = True):
    """A provider admin corrects a delivery of the frozen month (its check-out ten minutes earlier): a correction
    of a frozen month waits for the bureau, which approves it (unless `approve` is False); from then on it counts."""
    from servicehub.visits import queue
    from servicehub.visits import services as records
    from servicehub.visits.models import EvvException

    first, last = services.month_of(history["month"])
    with app.test_request_context():
        delivery = db.session.scalars(select(ServiceRecord).join(Visit, Visit.delivery_record_id == ServiceRecord.id)
                                      .where(ServiceRecord.kind == RecordKind.DELIVERY,
                                             ServiceRecord.service_date.between(first, last))
                                      .order_by(ServiceRecord.id)).first()
        provider = Principal(user_id=None, username="p", role=Role.PROVIDER_ADMIN, organisation_id=history["org"])
        records.correct(provider, delivery.id, str(uuid.uuid4()), {
            "reason_code": "wrong_time", "notes": "签出时间录错，按实际更正", "ended_at": delivery.ended_at - timedelta(minutes=10)})
        if approve:
            waiting = db.session.scalar(select(EvvException.id).where(
                EvvException.visit_id == delivery.visit_id, EvvException.code == "frozen_month_correction"))
            queue.decide(Principal(user_id=None, username="区民政局", role=Role.MANAGER), waiting, True)
        return delivery.visit_id


def test_a_frozen_report_reads_the_same_after_a_late_correction(app, client, history):
    body = {"contract_id": history["contract"], "month": history["month"], "accept_open_exceptions": True}
    created = client.post("/api/v1/reports/frozen", json=body, headers=history["manager"])
    assert created.status_code == 201, created.get_json()
    frozen = created.get_json()
    assert frozen["record_count"] > 0 and len(frozen["content_hash"]) == 64 and frozen["code_version"]
    again = client.post("/api/v1/reports/frozen", json=body, headers=history["manager"])
    assert again.status_code == 409

    url = f"/api/v1/reports/frozen/{frozen['id']}"
    assert client.get(f"{url}/differences", headers=history["auditor"]).get_json()["unchanged"] is True
    visit_id = late_correction(app, history)

    assert client.get(url, headers=history["auditor"]).get_json()["figures"] == frozen["figures"]
    differences = client.get(f"{url}/differences", headers=history["auditor"]).get_json()
    assert differences["unchanged"] is False
    assert [r["visit_id"] for r in differences["records"]] == [visit_id]
    fields = differences["records"][0]["fields"]
    assert fields["corrected"] == {"frozen": False, "now": True}
    assert fields["ended_at"]["now"] < fields["ended_at"]["frozen"]
    changed = {(d["group"], d["figure"]) for d in differences["figures"]}
    assert ("total", "service_hours") in changed and ("total", "corrected_rate") in changed
    assert ("total", "manual_or_edited_rate") in changed  # its times were edited
    assert ("total", "person_times") not in changed


def test_frozen_reports_cannot_be_changed_in_the_database(app, history):
    with app.app_context():
        frozen = services.freeze_contract_month(COMMAND_LINE, history["contract"], history["month"],
                                                accept_open_exceptions=True)
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            db.session.execute(sa.text("UPDATE frozen_reports SET record_count = 0 WHERE id = :id"), {"id": frozen.id})
        db.session.rollback()


def test_freezing_refuses_a_month_not_over_or_malformed(client, history):
    this_month = district_today().strftime("%Y-%m")
    for month, status in ((this_month, 422), ("2026-13", 422), ("1999-01", 422)):
        response = client.post("/api/v1/reports/frozen", json={"contract_id": history["contract"], "month": month},
                               headers=history["manager"])
        assert response.status_code == status, (month, response.get_json())
        assert "month" in response.get_json()["errors"]
    assert client.post("/api/v1/reports/frozen", json={"contract_id": history["contract"], "month": "2026-10"},
                       headers=history["auditor"]).status_code == 403


def test_the_monthly_close_freezes_once_and_scores_the_organisations(app, runner, client, history):
    today = district_today().isoformat()
    first = runner.invoke(args=["reports", "close-month", "--today", today])
    assert first.exit_code == 0, first.output
    assert "1 monthly reports frozen" in first.output
    second = runner.invoke(args=["reports", "close-month", "--today", today])
    assert "0 monthly reports frozen" in second.output
    with app.app_context():
        assert db.session.scalar(select(func.count(FrozenReport.id))) == 1
        closed = services.scores_visible(COMMAND_LINE)
        assert history["org"] in {row.organisation_id for row in closed}  # over the last three full months
        services.compute_scores(history["first"], history["last"])  # a later period with enough person-times
    scores = client.get("/api/v1/reports/scores", headers=history["auditor"]).get_json()
    ours = [s for s in scores if s["organisation_id"] == history["org"]]
    assert ours[0]["period_end"] == history["last"].isoformat()
    assert 0 < ours[0]["score"] <= 1 and ours[0]["components"]["on_time"] is not None
    with app.app_context():
        assert services.latest_scores()[history["org"]] == ours[0]["score"]
        assert organisation_performance()[history["org"]] == ours[0]["score"]  # matching's performance factor
    own = client.get("/api/v1/reports/scores", headers=history["provider"]).get_json()
    assert {s["organisation_id"] for s in own} == {history["org"]}


def test_a_group_of_visits_without_a_worker_drills_down_to_them(app, client, history):
    with app.app_context():
        # Two visits of the period that were recorded, missed ones first (a short history may have none missed).
        chosen = db.session.execute(select(Visit.id, Visit.status).where(
            Visit.status.in_(("missed", "completed")), Visit.service_date.between(history["first"], history["last"]))
            .order_by(Visit.status.desc(), Visit.id).limit(2)).all()
        assert len(chosen) == 2
        db.session.execute(sa.update(Visit).where(Visit.id.in_([v.id for v in chosen])).values(worker_id=None))
        db.session.commit()
    missed = sum(v.status == "missed" for v in chosen)
    report = kpis(client, "auditor", history, group_by="worker", **period(history)).get_json()
    nobody = next(g for g in report["groups"] if g["key"]["worker"] is None)
    assert nobody["figures"]["missed"] == missed and nobody["figures"]["person_times"] == 2 - missed
    drilled = client.get("/api/v1/reports/records", headers=history["auditor"],
                         query_string={**period(history), "unassigned": "worker"}).get_json()
    assert {r["visit_id"] for r in drilled["records"]} == {v.id for v in chosen}
    assert drilled["sums"]["missed"] == missed and drilled["sums"]["person_times"] == 2 - missed
    page = client.get("/reports", query_string={**period(history), "group_by": "worker"},
                      headers=history["auditor"])
    assert "unassigned=worker" in page.get_data(as_text=True)
