"""Active discovery on the real database: who the rules find (and who they do not), the item in the right town's
queue, no duplicates while an item is open, the rules switched and tuned by the district only; and the three
intake jobs in the scheduler, each running once per slot."""

import contextvars
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from servicehub.auth.permissions import COMMAND_LINE
from servicehub.database import utcnow
from servicehub.extensions import db
from servicehub.intake import services
from servicehub.intake.models import Application
from servicehub.jobs import tasks
from servicehub.jobs.models import JobRun
from servicehub.matching.models import Referral
from servicehub.registry import services as registry
from servicehub.scheduling import services as scheduling
from servicehub.scheduling.models import Visit
from servicehub.timeutil import district_today
from tests.intake.test_applications_api import answer
from tests.registry import factories as f
from tests.scheduling.fixtures import EVERY_DAY, accept_all

RULES = ("lives_alone_missed_checks", "all_visits_missed", "class_lapsing")
HISTORY_DAYS = 10  # visits were generated for the ten days before today


def years_ago(today: date, years: int) -> date:
    """The last birth date on which someone is `years` old today."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return date(today.year - years, 2, 28)


def statuses(visits_by_day: dict[date, Visit], pattern: str, today: date) -> None:
    """Set the past days' visits, oldest first, from a pattern: c completed, m missed, x cancelled."""
    kinds = {"c": "completed", "m": "missed", "x": "cancelled"}
    assert len(pattern) == HISTORY_DAYS
    for k, letter in enumerate(pattern):
        day = today - timedelta(days=HISTORY_DAYS - k)
        visits_by_day[day].status = kinds[letter]


@pytest.fixture
def people(app, demo):
    """Recipients the rules should find, and their near misses, with ten days of visits behind them (as the
    check-outs and the missed-visit detection would have left them). {name: recipient id}."""
    with app.app_context():
        today = district_today()
        org = f.organisation_ids()[0]
        f.worker(org, availability=EVERY_DAY, start_lat=32.203, start_lon=119.684)
        f.contract(org, areas=[f.DAGANG, f.DINGMAO], lines=[
            {"service_type": "LC02", "unit_price_fen": 1000, "contracted_quantity": 5000},
            {"service_type": "PS03", "unit_price_fen": 1000, "contracted_quantity": 5000}])
        sixty, fifty_nine = years_ago(today, 60), years_ago(today, 60) + timedelta(days=1)
        old = date(1941, 3, 12)
        # name: (birth date, lives alone, service type, the last ten days' visits, oldest first)
        visited = {
            "独居六十": (sixty, True, "PS03", "ccccccccmm"),  # the rule's hit, at exactly 60
            "独居仅一次": (old, True, "PS03", "cccccccccm"),  # only the last check missed
            "独居五十九": (fifty_nine, True, "PS03", "ccccccccmm"),  # one day too young
            "非独居": (old, False, "PS03", "ccccccccmm"),  # not living alone
            "一周全未": (old, False, "LC02", "cccmmmmmmm"),  # every visit of the last seven days missed
            "首日完成": (old, False, "LC02", "ccccmmmmmm"),  # done on the window's first day
            "仅一次未": (old, False, "LC02", "cccxxxxxxm"),  # one missed, the others cancelled
        }
        ids, needs = {}, {}
        for name, (born, alone, code, _) in visited.items():
            person = f.recipient(name=name, id_number=f.id_number(born), lives_alone=alone)
            ids[name] = person.id
            needs[name] = f.need(person.id, service_type=code, quantity=7,
                                 start_date=today - timedelta(days=HISTORY_DAYS)).id
        accept_all(org, list(needs.values()))
        # The referrals stand for the service that started ten days ago (as the demo history reads them).
        for referral in db.session.scalars(select(Referral).where(Referral.need_id.in_(needs.values()))):
            assert referral.status in ("accepted", "active"), referral.status
            referral.start_date = today - timedelta(days=HISTORY_DAYS)
        db.session.commit()
        report = scheduling.generate_visits(COMMAND_LINE, org, today - timedelta(days=HISTORY_DAYS),
                                            today - timedelta(days=1))
        assert report.created == HISTORY_DAYS * len(visited)
        for name, (_, _, _, pattern) in visited.items():
            days = {v.service_date: v for v in db.session.scalars(select(Visit).where(Visit.recipient_id == ids[name]))}
            statuses(days, pattern, today)
        db.session.commit()
        # name: (class valid until, area)
        lapsing = {
            "三十天到期": (today + timedelta(days=30), f.DINGMAO),  # the rule's hit, in the other town
            "已过期": (today - timedelta(days=5), f.DAGANG),  # lapsed already: a hit too
            "三十一天到期": (today + timedelta(days=31), f.DAGANG),  # one day too late
            "暂停服务": (today + timedelta(days=10), f.DAGANG),  # would be a hit, but not being served
        }
        for name, (until, area) in lapsing.items():
            ids[name] = f.recipient(name=name, id_number=f.id_number(), class_valid_until=until, area=area).id
        registry.update_recipient(COMMAND_LINE, ids["暂停服务"], {"status": "suspended"})
        return {**ids, "today": today}


EXPECTED = {("lives_alone_missed_checks", "独居六十"), ("all_visits_missed", "一周全未"),
            ("class_lapsing", "三十天到期"), ("class_lapsing", "已过期")}


def items(app) -> list[Application]:
    with app.app_context():
        found = db.session.scalars(select(Application).where(Application.source == "discovery")
                                   .order_by(Application.id)).all()
        for application in found:
            _ = application.town.code, [s.kind for s in application.steps]
        db.session.expunge_all()
        return found


def found(app, people) -> set[tuple[str, str]]:
    names = {rid: name for name, rid in people.items() if name != "today"}
    return {(a.rule_code, names[a.recipient_id]) for a in items(app)}


def test_each_rule_files_an_item_for_exactly_the_people_at_risk(app, people):
    with app.app_context():
        filed = services.run_discovery()
    assert found(app, people) == EXPECTED
    assert len(filed) == len(EXPECTED)
    by_name = {name: a for a in items(app) for name, rid in people.items() if rid == a.recipient_id}
    today = people["today"]
    assert by_name["独居六十"].town.code == by_name["一周全未"].town.code == by_name["已过期"].town.code == f.DAGANG
    assert by_name["三十天到期"].town.code == f.DINGMAO
    assert "2 missed" in by_name["独居六十"].situation and "独居老人连续未探访成功" in by_name["独居六十"].situation
    assert "年满60岁" in by_name["独居六十"].situation and "PS03" in by_name["独居六十"].situation
    assert "7 missed of 7" in by_name["一周全未"].situation and "最近7天" in by_name["一周全未"].situation
    assert f"valid until {today + timedelta(days=30)}" in by_name["三十天到期"].situation
    assert f"valid until {today - timedelta(days=5)}" in by_name["已过期"].situation
    with app.app_context():
        assert {registry.phone_in_clear(a) for a in by_name.values()} == {"13800138000"}
    for application in by_name.values():
        assert application.source == "discovery" and application.status == "new" and application.urgency == "normal"
        assert application.created_by == "system" and [s.kind for s in application.steps] == ["submitted"]
        assert application.name in by_name and application.phone_masked == "138****8000"
        assert application.help_text and application.reference.startswith("SQ-")
        assert application.due_at > application.submitted_at + timedelta(days=2)  # three working days


def test_the_items_are_in_the_right_towns_queue(client, auth_headers, app, people):
    with app.app_context():
        services.run_discovery()
    dagang = client.get("/api/v1/applications", query_string={"source": "discovery"},
                        headers=auth_headers("manager.dagang")).get_json()
    assert {(a["rule_code"], a["name"]) for a in dagang} == EXPECTED - {("class_lapsing", "三十天到期")}
    assert all(a["town"] == f.DAGANG and a["recipient_id"] for a in dagang)
    district = client.get("/api/v1/applications", query_string={"source": "discovery"},
                          headers=auth_headers("manager")).get_json()
    assert {(a["rule_code"], a["name"]) for a in district} == EXPECTED
    assert {a["town"] for a in district if a["name"] == "三十天到期"} == {f.DINGMAO}


def test_no_second_item_while_one_is_open_and_a_new_one_once_it_is_closed(client, auth_headers, app, people):
    run = client.post("/api/v1/discovery/run", headers=auth_headers("manager"))
    assert run.status_code == 200, run.get_json()
    assert run.get_json()["filed"] == len(EXPECTED) and len(run.get_json()["references"]) == len(EXPECTED)
    again = client.post("/api/v1/discovery/run", headers=auth_headers("manager"))
    assert again.status_code == 200 and again.get_json() == {"filed": 0, "references": []}
    with app.app_context():
        assert services.run_discovery() == []
    item = next(a for a in items(app) if a.recipient_id == people["独居六十"])
    headers = auth_headers("manager.dagang")
    contacted = client.post(f"/api/v1/applications/{item.id}/steps", json={"kind": "contacted", "note": "电话联系"},
                            headers=headers)
    assert contacted.status_code == 201, contacted.get_json()
    assert client.post("/api/v1/discovery/run", headers=auth_headers("manager")).get_json()["filed"] == 0  # still open
    closed = client.post(f"/api/v1/applications/{item.id}/steps", json={"kind": "closed", "note": "已上门，老人住院"},
                         headers=headers)
    assert closed.status_code == 201 and closed.get_json()["status"] == "closed"
    third = client.post("/api/v1/discovery/run", headers=auth_headers("manager")).get_json()
    assert third["filed"] == 1
    assert [(a.rule_code, a.recipient_id, a.status) for a in items(app) if a.recipient_id == people["独居六十"]] == [
        ("lives_alone_missed_checks", people["独居六十"], "closed"),
        ("lives_alone_missed_checks", people["独居六十"], "new")]
    assert third["references"] == [items(app)[-1].reference]


@pytest.mark.parametrize("who", ["manager", "admin"])
def test_the_district_switches_a_rule_off_and_it_finds_nobody(client, auth_headers, app, people, who):
    response = client.patch("/api/v1/discovery/rules/class_lapsing", json={"enabled": False}, headers=auth_headers(who))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["enabled"] is False and response.get_json()["updated_by"] == who
    with app.app_context():
        services.run_discovery()
    assert found(app, people) == {hit for hit in EXPECTED if hit[0] != "class_lapsing"}
    rules = {r["code"]: r for r in client.get("/api/v1/discovery/rules", headers=auth_headers("manager")).get_json()}
    assert [rules[code]["enabled"] for code in RULES] == [True, True, False]
    back = client.patch("/api/v1/discovery/rules/class_lapsing", json={"enabled": True}, headers=auth_headers(who))
    assert back.status_code == 200 and back.get_json()["enabled"] is True
    with app.app_context():
        assert {(a.rule_code, a.recipient_id) for a in services.run_discovery()} == {
            ("class_lapsing", people["三十天到期"]), ("class_lapsing", people["已过期"])}


def test_changed_thresholds_change_who_is_found(client, auth_headers, app, people):
    headers = auth_headers("manager")
    changes = {"class_lapsing": {"days": 31}, "lives_alone_missed_checks": {"in_a_row": 3},
               "all_visits_missed": {"days": 6, "min_visits": 6}}
    for code, params in changes.items():
        response = client.patch(f"/api/v1/discovery/rules/{code}", json={"params": params}, headers=headers)
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["params"] == {**services.rules.RULE_BY_CODE[code].defaults, **params}
    rules = {r["code"]: r for r in client.get("/api/v1/discovery/rules", headers=headers).get_json()}
    assert "31天" in rules["class_lapsing"]["text_zh"] and "within 31 days" in rules["class_lapsing"]["text_en"]
    assert "last 3 welfare checks" in rules["lives_alone_missed_checks"]["text_en"]
    with app.app_context():
        services.run_discovery()
    assert found(app, people) == {
        ("class_lapsing", "三十天到期"), ("class_lapsing", "已过期"), ("class_lapsing", "三十一天到期"),  # one more day
        ("all_visits_missed", "一周全未"), ("all_visits_missed", "首日完成"),  # six days back: the done visit is older
    }  # three missed checks in a row: nobody
    situation = next(a.situation for a in items(app) if a.recipient_id == people["首日完成"])
    assert "6 missed of 6" in situation and "最近6天内至少有6次" in situation


def test_the_age_threshold_moves_who_is_found(client, auth_headers, app, people):
    patch = client.patch("/api/v1/discovery/rules/lives_alone_missed_checks", json={"params": {"min_age": 61}},
                         headers=auth_headers("admin"))
    assert patch.status_code == 200, patch.get_json()
    with app.app_context():
        services.run_discovery()
    assert ("lives_alone_missed_checks", "独居六十") not in found(app, people)
    patch = client.patch("/api/v1/discovery/rules/lives_alone_missed_checks", json={"params": {"min_age": 59}},
                         headers=auth_headers("admin"))
    assert patch.status_code == 200 and patch.get_json()["params"]["min_age"] == 59
    with app.app_context():
        services.run_discovery()
    assert {hit for hit in found(app, people) if hit[0] == "lives_alone_missed_checks"} == {
        ("lives_alone_missed_checks", "独居六十"), ("lives_alone_missed_checks", "独居五十九")}


def test_thresholds_reset_to_a_default_are_not_stored_as_changes(client, auth_headers, app, demo):
    headers = auth_headers("manager")
    client.patch("/api/v1/discovery/rules/all_visits_missed", json={"params": {"days": 14}}, headers=headers)
    response = client.patch("/api/v1/discovery/rules/all_visits_missed", json={"params": {"min_visits": 3}},
                            headers=headers)
    assert response.get_json()["params"] == {"days": 14, "min_visits": 3}  # the earlier change stays
    response = client.patch("/api/v1/discovery/rules/all_visits_missed", json={"params": {"days": 7}}, headers=headers)
    assert response.get_json()["params"] == {"days": 7, "min_visits": 3}
    with app.app_context():
        from servicehub.intake.models import DiscoveryRule

        assert db.session.get(DiscoveryRule, "all_visits_missed").params == {"min_visits": 3}


def test_a_town_manager_may_not_set_or_run_the_rules(client, auth_headers, app, people):
    headers = auth_headers("manager.dagang")
    assert client.get("/api/v1/discovery/rules", headers=headers).status_code == 200
    response = client.patch("/api/v1/discovery/rules/class_lapsing", json={"enabled": False}, headers=headers)
    assert response.status_code == 403, response.get_json()
    response = client.patch("/api/v1/discovery/rules/class_lapsing", json={"params": {"days": 90}}, headers=headers)
    assert response.status_code == 403
    assert client.post("/api/v1/discovery/run", headers=headers).status_code == 403
    rules = {r["code"]: r for r in client.get("/api/v1/discovery/rules", headers=headers).get_json()}
    assert rules["class_lapsing"]["enabled"] is True and rules["class_lapsing"]["params"] == {"days": 30}
    assert items(app) == []


@pytest.mark.parametrize(("params", "field"), [
    ({"days": 0}, "params.days"), ({"days": 400}, "params.days"), ({"days": "30"}, "params.days"),
    ({"days": True}, "params.days"), ({"weeks": 4}, "params.weeks"), ({"days": 2.5}, "params.days"),
])
def test_bad_thresholds_are_refused_naming_the_threshold_and_nothing_changes(client, auth_headers, demo, params,
                                                                               field):
    headers = auth_headers("manager")
    response = client.patch("/api/v1/discovery/rules/class_lapsing", json={"enabled": False, "params": params},
                            headers=headers)
    assert response.status_code == 422, response.get_json()
    assert set(response.get_json()["errors"]) == {field}
    rules = {r["code"]: r for r in client.get("/api/v1/discovery/rules", headers=headers).get_json()}
    assert rules["class_lapsing"]["params"] == {"days": 30} and rules["class_lapsing"]["enabled"] is True


def test_a_bad_service_type_code_is_refused(client, auth_headers, demo):
    response = client.patch("/api/v1/discovery/rules/lives_alone_missed_checks",
                            json={"params": {"service_type": "ps-03"}}, headers=auth_headers("manager"))
    assert response.status_code == 422 and set(response.get_json()["errors"]) == {"params.service_type"}


def test_an_unknown_rule_is_not_found(client, auth_headers, demo):
    response = client.patch("/api/v1/discovery/rules/no_such_rule", json={"enabled": False},
                            headers=auth_headers("manager"))
    assert response.status_code == 404


def test_an_auditor_reads_the_rules_but_changes_and_runs_nothing(client, auth_headers, app, people):
    headers = auth_headers("auditor")
    listed = client.get("/api/v1/discovery/rules", headers=headers)
    assert listed.status_code == 200
    assert [r["code"] for r in listed.get_json()] == list(RULES)
    assert all(r["enabled"] and r["text_zh"] and r["text_en"] for r in listed.get_json())
    assert client.patch("/api/v1/discovery/rules/class_lapsing", json={"enabled": False},
                        headers=headers).status_code == 403
    assert client.post("/api/v1/discovery/run", headers=headers).status_code == 403
    assert items(app) == []


def test_providers_and_caregivers_see_no_rules(client, auth_headers, demo):
    for who in ("provider", "caregiver"):
        assert client.get("/api/v1/discovery/rules", headers=auth_headers(who)).status_code == 403
        assert client.post("/api/v1/discovery/run", headers=auth_headers(who)).status_code == 403


def test_a_longer_window_than_the_lookback_still_sees_the_older_visits(app, people):
    """Thresholds may look back up to 366 days (PARAM_LIMITS), so the visits the rules see must reach as far."""
    with app.app_context():
        today = people["today"]
        recipient = people["一周全未"]
        visits = db.session.scalars(select(Visit).where(Visit.recipient_id == recipient)).all()
        for visit in visits:  # the same ten days of history, moved 100 days back: only misses
            visit.service_date -= timedelta(days=100)
            visit.status = "missed"
        db.session.commit()
        services.update_discovery_rule(COMMAND_LINE, "all_visits_missed", None, {"days": 120, "min_visits": 2})
        filed = services.run_discovery(today)
        assert ("all_visits_missed", recipient) in {(a.rule_code, a.recipient_id) for a in filed}


def test_a_district_with_no_visits_in_the_lookback_still_runs_the_class_rule(app, demo):
    with app.app_context():
        today = district_today()
        lapsing = f.recipient(name="无服务记录", class_valid_until=today + timedelta(days=3)).id
        f.recipient(name="有效期长", id_number=f.id_number(), class_valid_until=today + timedelta(days=300))
        filed = services.run_discovery(today)
        assert [(a.rule_code, a.recipient_id, a.name) for a in filed] == [("class_lapsing", lapsing, "无服务记录")]


# --- the jobs -------------------------------------------------------------------------------------------------


def test_the_scheduler_registers_the_three_intake_jobs(app):
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    from servicehub.jobs.runner import build_scheduler

    scheduler = build_scheduler(app)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert {"escalate_applications", "application_reminders", "active_discovery"} <= set(jobs)
    assert jobs["escalate_applications"].func_ref == "servicehub.jobs.tasks:escalate_applications"
    assert jobs["application_reminders"].func_ref == "servicehub.jobs.tasks:application_reminders"
    assert jobs["active_discovery"].func_ref == "servicehub.jobs.tasks:active_discovery"
    escalate = jobs["escalate_applications"].trigger
    assert isinstance(escalate, IntervalTrigger) and escalate.interval == timedelta(seconds=300)
    for job_id, (hour, minute) in {"active_discovery": (5, 30), "application_reminders": (8, 0)}.items():
        trigger = jobs[job_id].trigger
        assert isinstance(trigger, CronTrigger)
        fields = {field.name: str(field) for field in trigger.fields}
        assert (fields["hour"], fields["minute"]) == (str(hour), str(minute))
        assert str(trigger.timezone) == app.config["SERVICEHUB_TIMEZONE"]


@pytest.fixture
def job_app(app, monkeypatch):
    """The jobs run in this app (as the scheduler process sets them up), outside any application context."""
    monkeypatch.setattr(tasks, "APP", app)
    monkeypatch.setattr(tasks, "HOLDER", "test")
    return app


def run_job(job) -> None:
    """Run a job the way the scheduler's thread does, without leaving its SQLite BEGIN IMMEDIATE flag set here."""
    contextvars.copy_context().run(job)


def run_twice(app, job, job_id: str, seconds: int) -> list[JobRun]:
    """Fire a job twice, as two scheduler processes might; its runs, checked to be one per slot (one in all,
    unless the two firings fell either side of a slot boundary)."""
    first = tasks.slot_of(utcnow(), seconds)
    run_job(job)
    run_job(job)
    last = tasks.slot_of(utcnow(), seconds)
    rows = job_runs(app, job_id)
    assert len({r.slot for r in rows}) == len(rows) >= 1
    assert len(rows) == 1 or first != last
    return rows


def job_runs(app, job_id: str) -> list[JobRun]:
    with app.app_context():
        rows = db.session.scalars(select(JobRun).where(JobRun.job_id == job_id).order_by(JobRun.id)).all()
        db.session.expunge_all()
        return rows


def file_emergency(client, **changes):
    response = client.post("/api/v1/public/applications", json={
        "name": "王阿姨", "phone": "13800138000", "area": f.DAGANG, "situation": "家中失火", "service_types": ["LC02"],
        "urgency": "emergency", **answer(client), **changes})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_the_escalation_job_escalates_an_overdue_application_once_per_slot(job_app, client, demo, monkeypatch):
    monkeypatch.setitem(job_app.config, "SERVICEHUB_INTAKE_EMERGENCY_HOURS", 0)  # due at once
    file_emergency(client)
    rows = run_twice(job_app, tasks.escalate_applications, "escalate_applications", tasks.ESCALATION_SECONDS)
    with job_app.app_context():
        escalated = db.session.scalars(select(Application).where(Application.escalated_at.is_not(None))).all()
        assert len(escalated) == 1 and [s.kind for s in escalated[0].steps] == ["submitted", "escalated"]
    assert rows[0].status == "done" and rows[0].result == {"escalated": 1} and rows[0].holder == "test"


def test_the_reminders_job_reminds_of_documents_due_once_per_day(job_app, client, auth_headers, demo, monkeypatch):
    monkeypatch.setitem(job_app.config, "SERVICEHUB_INTAKE_DOCUMENT_DAYS", 2)  # due within three days: remind
    with job_app.app_context():
        f.contract(f.organisation_ids()[0])
    file_emergency(client)
    headers = auth_headers("manager.dagang")
    item = client.get("/api/v1/applications", headers=headers).get_json()[0]
    approved = client.post(f"/api/v1/applications/{item['id']}/approve", headers=headers, json={
        "provisional": True, "recipient": {"id_number": f.id_number(female=True), "assistance_class": "dibao"},
        "documents": ["身份证明", "收入证明"]})
    assert approved.status_code == 200, approved.get_json()
    rows = run_twice(job_app, tasks.application_reminders, "application_reminders", 24 * 3600)
    assert rows[0].status == "done" and rows[0].result == {"reminded": 2}
    detail = client.get(f"/api/v1/applications/{item['id']}", headers=headers).get_json()
    assert [d["reminders"] for d in detail["documents"]] == [1, 1]
    assert [s["kind"] for s in detail["steps"]].count("reminded") == 2


def test_the_discovery_job_files_the_items_once_per_day(job_app, people):
    rows = run_twice(job_app, tasks.active_discovery, "active_discovery", 24 * 3600)
    assert rows[0].status == "done" and rows[0].result == {"filed": len(EXPECTED)}
    assert found(job_app, people) == EXPECTED
    assert all(a.created_by == "system" for a in items(job_app))
