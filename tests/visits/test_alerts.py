"""Late and missed visits raise alerts once, with a controllable clock; three misses in a row escalate."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from servicehub.auth.permissions import COMMAND_LINE
from servicehub.extensions import db
from servicehub.scheduling import services as scheduling
from servicehub.scheduling.models import Visit
from servicehub.timeutil import local_midnight
from servicehub.visits import alerts as rules
from servicehub.visits.models import ServiceRecord
from servicehub.visits.services import detect_late_and_missed
from tests.scheduling.fixtures import district_today

OPENS = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def state(status="published", meal=False, minutes=120):
    return rules.VisitState(1, 9, OPENS, OPENS + timedelta(minutes=minutes), status, meal)


@pytest.mark.parametrize(("minutes_after", "meal", "late"), [(14, False, False), (15, False, True), (4, True, False),
                                                           (5, True, True), (120, False, False)])
def test_late_after_the_grace_period_until_the_window_closes(minutes_after, meal, late):
    assert rules.is_late(state(meal=meal), OPENS + timedelta(minutes=minutes_after)) is late


def test_on_a_published_roster_lateness_counts_from_the_planned_start():
    planned = rules.VisitState(1, 9, OPENS, OPENS + timedelta(hours=8), "published", planned_start=OPENS + timedelta(hours=3))
    assert not rules.is_late(planned, OPENS + timedelta(hours=1))
    assert rules.is_late(planned, OPENS + timedelta(hours=3, minutes=15))


def test_missed_when_not_started_by_the_end_of_the_window():
    assert rules.is_missed(state(), OPENS + timedelta(minutes=120))
    assert not rules.is_missed(state(), OPENS + timedelta(minutes=119))
    assert not rules.is_missed(state("in_progress"), OPENS + timedelta(days=1))


def test_three_misses_in_a_row_and_only_then():
    assert rules.missed_streak(["completed", "missed", "missed", "missed"])
    assert not rules.missed_streak(["missed", "missed", "completed"]) and not rules.missed_streak(["missed"] * 2)


@pytest.fixture
def three_days(app, served):
    """Rosters published for today and the next two days."""
    with app.app_context():
        for k in range(3):
            run = scheduling.start_run(COMMAND_LINE, served["org"], district_today() + timedelta(days=k),
                                       time_limit_s=0.3)
            scheduling.publish_run(COMMAND_LINE, run.id)
        return [district_today() + timedelta(days=k) for k in range(3)]


def inbox(client, served, who, **query):
    response = client.get("/api/v1/alerts", headers=served[who], query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_late_visit_alerts_its_provider_once_and_a_missed_one_alerts_the_managers(app, served, client, three_days):
    today = three_days[0]
    # The fixture's visits may start 08:30-15:30 (60 min in 08:30-16:30): at 15:50 every one is late.
    with app.app_context():
        late_at = local_midnight(today) + timedelta(hours=15, minutes=50)
        counts = detect_late_and_missed(late_at)
        assert counts["late"] == 5 and counts["missed"] == 0
        assert detect_late_and_missed(late_at + timedelta(minutes=5))["late"] == 0  # raised once
    late = inbox(client, served, "provider")
    assert len(late) == 5 and {a["kind"] for a in late} == {"late"}
    assert inbox(client, served, "manager") == []  # late visits are the provider's business
    with app.app_context():
        counts = detect_late_and_missed(local_midnight(today) + timedelta(hours=16, minutes=31))
        assert counts["missed"] == 5
        statuses = {v.status for v in db.session.scalars(select(Visit).where(Visit.service_date == today))}
        entries = db.session.scalars(select(ServiceRecord).where(ServiceRecord.kind == "missed")).all()
    assert statuses == {"missed"}
    assert len(entries) == 5 and {(e.outcome_reason, e.recorded_by) for e in entries} == {("not_done", "system")}
    missed = inbox(client, served, "manager", kind="missed")
    assert len(missed) == 5 and all("not done" in a["message"] for a in missed)


def test_an_alert_is_acknowledged_with_a_note_once_and_stays_in_the_history(app, served, client, three_days):
    with app.app_context():
        detect_late_and_missed(local_midnight(three_days[0]) + timedelta(hours=15, minutes=50))
    alert = inbox(client, served, "provider")[0]
    path = f"/api/v1/alerts/{alert['id']}/acknowledge"
    assert client.post(path, json={"note": ""}, headers=served["provider"]).status_code == 422
    done = client.post(path, json={"note": "已电话联系护理员"}, headers=served["provider"])
    assert done.status_code == 200 and done.get_json()["acknowledged_by"] == "provider"
    assert client.post(path, json={"note": "again"}, headers=served["provider"]).status_code == 409
    assert alert["id"] not in {a["id"] for a in inbox(client, served, "provider")}
    assert alert["id"] in {a["id"] for a in inbox(client, served, "provider", open="false")}
    assert client.post(path, json={"note": "x"}, headers=served["auditor"]).status_code == 403


def test_three_misses_in_a_row_escalate_to_the_town(app, served, client, three_days):
    with app.app_context():
        counts = detect_late_and_missed(local_midnight(three_days[2]) + timedelta(hours=23))
    assert counts["missed"] == 15 and counts["escalated"] >= 5
    escalations = inbox(client, served, "manager.dagang", kind="missed_streak")
    assert len(escalations) == 5 and all("three visits in a row" in a["message"] for a in escalations)


def test_daily_alerts_for_lines_budgets_contract_ends_and_expiring_certificates(app, served, client):
    from servicehub.registry import services as registry
    from servicehub.registry.models import Contract, ContractLine
    from servicehub.visits.services import daily_contract_alerts

    with app.app_context():
        contract = db.session.scalar(select(Contract).where(Contract.organisation_id == served["org"]))
        line = db.session.scalar(select(ContractLine).where(ContractLine.contract_id == contract.id,
                                                            ContractLine.service_type.has(code="LC02")))
        done = db.session.scalars(select(Visit).where(Visit.service_date == district_today())).all()
        for visit in done:
            visit.status = "completed"  # as check-outs would leave them
        line.contracted_quantity = 6  # 5 delivered of 6: past 80 %
        worker = registry.get_worker(COMMAND_LINE, served["workers"][0])
        registry.update_worker(COMMAND_LINE, worker.id, {"qualifications": [
            {"code": "counsellor", "certificate_no": "X1", "expires_on": district_today() + timedelta(days=10)}]})
        db.session.commit()
        end_soon = contract.end_date <= district_today() + timedelta(days=30)
        first = daily_contract_alerts(district_today())
        assert first["lines"] == 1 and first["qualifications"] == 1 and first["ending"] == int(end_soon)
        assert daily_contract_alerts(district_today()) == {"lines": 0, "budgets": 0, "ending": 0, "qualifications": 0}
        line.contracted_quantity = 5
        db.session.commit()
        assert daily_contract_alerts(district_today())["lines"] == 1  # now 100 %
    kinds = {a["kind"] for a in inbox(client, served, "provider")}
    assert {"line_80", "line_100", "qualification_expiring"} <= kinds
    assert {"line_80", "line_100"} <= {a["kind"] for a in inbox(client, served, "manager")}
    assert "qualification_expiring" not in {a["kind"] for a in inbox(client, served, "manager")}


def test_a_deliberately_missed_meal_is_late_after_five_minutes_and_missed_when_its_window_closes(app, served, client):
    from datetime import time as clock

    from tests.registry import factories as f
    from tests.scheduling.fixtures import accept_all

    with app.app_context():
        person = f.recipient(name="助餐对象", id_number=f.id_number(birth=f.date(1936, 2, 2)), lat=32.201, lon=119.683)
        need = f.need(person.id, service_type="LC01", quantity=7, window_start=clock(10, 30), window_end=clock(12, 30),
                      duration_min=15)
        accept_all(served["org"], [need.id])
        run = scheduling.start_run(COMMAND_LINE, served["org"], district_today(), time_limit_s=0.3)
        scheduling.publish_run(COMMAND_LINE, run.id)
        meal = db.session.scalar(select(Visit).where(Visit.recipient_id == person.id,
                                                     Visit.service_date == district_today()))
        assert meal.status == "published"
        opens = meal.planned_start  # on a published roster, lateness counts from the planned start
        detect_late_and_missed(opens + timedelta(minutes=4))
        assert [a for a in inbox(client, served, "provider") if a["visit_id"] == meal.id] == []
        detect_late_and_missed(opens + timedelta(minutes=5))  # one detection cycle later
        assert [a["kind"] for a in inbox(client, served, "provider") if a["visit_id"] == meal.id] == ["late"]
        detect_late_and_missed(local_midnight(district_today()) + timedelta(hours=12, minutes=30))
        assert db.session.get(Visit, meal.id).status == "missed"
    assert [a["kind"] for a in inbox(client, served, "manager") if a["visit_id"] == meal.id] == ["missed"]
