"""Paying only for verified visits, through the API: recipients' confirmation cards, one-time codes a payee cannot
fake (wrong tries logged, then the visit flagged and its provider told), signatures, bounded corrections, frozen
months, late cancellations, idempotent writes, and the exception queue (the provider explains, the bureau decides).

Times are pinned (`clock_at`) to the visit's plan, so what the rules find does not depend on when the tests run."""

from __future__ import annotations

import base64
import io
from datetime import datetime, timedelta

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from servicehub.auth.models import AuditLog
from servicehub.auth.permissions import COMMAND_LINE, Principal, Role
from servicehub.database import clock_at
from servicehub.errors import PermissionDenied
from servicehub.extensions import db
from servicehub.registry.models import Contract
from servicehub.scheduling.models import Visit
from servicehub.timeutil import district_today, local_midnight
from servicehub.visits import queue
from servicehub.visits.models import (
    Alert,
    ConfirmationAttempt,
    ConfirmationCard,
    EvvException,
    ExceptionStep,
    ServiceRecord,
)
from servicehub.visits.services import effective_delivery
from tests.registry import factories as f
from tests.scheduling.fixtures import EVERY_DAY, accept_all
from tests.visits.evv import (
    Stop,
    check_in,
    check_out,
    deliver,
    key,
    ledger_size,
    post,
    visit_status,
    wrong_code,
)

SIGNATURE_PREFIX = "data:image/png;base64,"


def signature(ink: bool = True) -> str:
    """A signature pad's PNG: a pen stroke, or nothing drawn."""
    image = Image.new("RGBA", (240, 90), (255, 255, 255, 0))
    if ink:
        ImageDraw.Draw(image).line([(15, 60), (50, 20), (80, 65), (120, 25), (160, 62), (200, 30)],
                                   fill=(20, 20, 60, 255), width=3)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return SIGNATURE_PREFIX + base64.b64encode(buffer.getvalue()).decode()


def get(client, served, path, who="provider", **query):
    return client.get(path, headers=served[who], query_string=query)


def exceptions_of(app, visit_id: int) -> dict[str, EvvException]:
    with app.app_context():
        rows = db.session.scalars(select(EvvException).where(EvvException.visit_id == visit_id)).all()
        for row in rows:
            db.session.expunge(row)
        return {row.code: row for row in rows}


def steps_of(app, exception_id: int) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(ExceptionStep.action).where(ExceptionStep.exception_id == exception_id)
                                       .order_by(ExceptionStep.id)))


def count(app, stmt) -> int:
    with app.app_context():
        return db.session.scalar(stmt)


def provider_of(organisation_id: int) -> Principal:
    return Principal(user_id=None, username="other-provider", role=Role.PROVIDER_ADMIN, organisation_id=organisation_id)


def today_of(app):
    """The district's date and its midnight (UTC)."""
    with app.app_context():
        return district_today(), local_midnight(district_today())


def act(client, served, path, body, who="provider"):
    """A provider admin's (or, with `who`, another reader's) step in the exception queue."""
    return post(client, served, path, body, who=who)


def correct(client, served, record_id: int, who="provider", headers=None, **body):
    body = {"reason_code": "wrong_time", "notes": "核实后更正", **body}
    return post(client, served, f"/api/v1/service-records/{record_id}/corrections", body, who=who, headers=headers)


# --- confirmation cards ----------------------------------------------------------------------------------------


def test_a_card_is_printed_once_and_a_new_one_revokes_the_old(app, served, client):
    recipient = served["recipients"][0]
    path = f"/api/v1/recipients/{recipient}/confirmation-cards"
    first = client.post(path, headers=served["manager"])
    assert first.status_code == 201 and first.mimetype == "application/pdf" and first.data.startswith(b"%PDF")
    assert f"card-{recipient}-1.pdf" in first.headers["Content-Disposition"]
    assert [a["kind"] for a in get(client, served, "/api/v1/alerts", "manager").get_json()] == []  # a first card

    second = client.post(path, headers=served["provider"])  # the provider serving the recipient reprints it
    assert second.status_code == 201 and second.data.startswith(b"%PDF") and second.data != first.data
    listed = get(client, served, path, "provider")
    assert listed.status_code == 200
    cards = listed.get_json()
    assert [(c["card_no"], c["in_force"], c["issued_by"]) for c in cards] == [(2, True, "provider"),
                                                                               (1, False, "manager")]
    assert cards[1]["revoked_at"] is not None and cards[0]["printed_used"] == 0
    assert set(cards[0]) == {"card_no", "recipient_id", "issued_at", "issued_by", "revoked_at", "printed_codes",
                             "printed_used", "in_force"}  # never the secret, never a code
    with app.app_context():
        stored = db.session.scalars(select(ConfirmationCard).where(ConfirmationCard.recipient_id == recipient)).all()
        assert len(stored) == 2 and all(len(c.secret_encrypted) > 32 for c in stored)
        events = db.session.execute(select(AuditLog.actor, AuditLog.changes).where(
            AuditLog.action == "confirmation_card_issued", AuditLog.entity_id == str(recipient))
            .order_by(AuditLog.id)).all()
        assert [(actor, changes["card_no"], changes["replaced"]) for actor, changes in events] == \
            [("manager", 1, None), ("provider", 2, 1)]

    # The bureau hears of a card its payee printed: the district and the recipient's town, not the provider.
    for manager in ("manager", "manager.dagang"):
        alerts = get(client, served, "/api/v1/alerts", manager, kind="card_reissued").get_json()
        assert len(alerts) == 1 and alerts[0]["recipient_id"] == recipient
        assert "#2" in alerts[0]["message"] and "replacing #1" in alerts[0]["message"]
    assert get(client, served, "/api/v1/alerts", "provider", kind="card_reissued").get_json() == []
    assert client.post(path, headers=served["manager"]).status_code == 201  # the bureau's own reprint: no alert
    assert len(get(client, served, "/api/v1/alerts", "manager", kind="card_reissued").get_json()) == 1


def test_only_the_bureau_and_the_provider_serving_the_recipient_print_cards(app, served, client):
    recipient = served["recipients"][0]
    path = f"/api/v1/recipients/{recipient}/confirmation-cards"
    assert client.post(path, headers=served["caregiver"]).status_code == 403
    assert client.get(path, headers=served["caregiver"]).status_code == 403
    assert client.post(path, headers=served["auditor"]).status_code == 403
    with app.app_context():
        stranger = f.recipient(name="未转介对象", id_number=f.id_number()).id  # not referred to the provider
    assert client.post(f"/api/v1/recipients/{stranger}/confirmation-cards", headers=served["provider"]).status_code == 404
    assert client.get(f"/api/v1/recipients/{stranger}/confirmation-cards", headers=served["provider"]).status_code == 404
    assert client.post(f"/api/v1/recipients/{stranger}/confirmation-cards", headers=served["manager"]).status_code == 201
    assert count(app, select(func.count(ConfirmationCard.id))) == 1


def test_an_old_cards_codes_stop_working_once_a_new_one_is_printed(app, served, client, day):
    stop = day["mine"][0]
    path = f"/api/v1/recipients/{stop.recipient_id}/confirmation-cards"
    assert client.post(path, headers=served["provider"]).status_code == 201  # revokes the fixture's card
    with clock_at(stop.start + timedelta(minutes=3)):
        assert check_in(client, served, stop).status_code == 201
    with clock_at(stop.start + timedelta(minutes=58)) as now:
        for code in (stop.code(now), stop.printed(0)):
            old = check_out(client, served, stop, now, confirmation_code=code)
            assert old.status_code == 422 and old.get_json()["code"] == "code_wrong", old.get_json()
    assert visit_status(app, stop.id) == "in_progress"


# --- codes at the check-out ------------------------------------------------------------------------------------


def test_a_phone_code_or_the_next_printed_code_confirms_a_visit(app, served, client, day):
    phone, printed = day["mine"][0], day["mine"][1]
    record = deliver(client, served, phone)
    assert record["confirmation_method"] == "code" and "no_confirmation" not in record["flags"]
    with clock_at(printed.start + timedelta(minutes=3)):
        assert check_in(client, served, printed).status_code == 201
    with clock_at(printed.start + timedelta(minutes=58)) as now:
        done = check_out(client, served, printed, now, confirmation_code=printed.printed(0))
    assert done.status_code == 201 and done.get_json()["flags"] == []
    with app.app_context():
        stored = {r.visit_id: r.confirmation for r in db.session.scalars(
            select(ServiceRecord).where(ServiceRecord.kind == "delivery"))}
        assert stored[phone.id] == {"method": "code", "card": 1, "kind": "phone",
                                    "counter": int((phone.start + timedelta(minutes=58)).timestamp()) // 30}
        assert stored[printed.id] == {"method": "code", "card": 1, "kind": "printed", "counter": 0}
        card = db.session.scalar(select(ConfirmationCard).where(ConfirmationCard.recipient_id == printed.recipient_id))
        assert card.printed_next == 1  # code no. 1 is crossed out
    assert count(app, select(func.count(ConfirmationAttempt.id))) == 0


@pytest.fixture
def tomorrow(app, served, day):
    """Tomorrow's roster published too: {recipient id: their visit tomorrow}."""
    from servicehub.scheduling import services as scheduling

    with app.app_context():
        run = scheduling.start_run(COMMAND_LINE, served["org"], district_today() + timedelta(days=1), time_limit_s=0.3)
        scheduling.publish_run(COMMAND_LINE, run.id)
        visits = db.session.scalars(select(Visit).where(Visit.service_date == district_today() + timedelta(days=1),
                                                        Visit.worker_id.is_not(None))).all()
        return {v.recipient_id: (v.id, v.planned_start) for v in visits}


def test_a_code_is_refused_when_wrong_expired_or_used_and_the_refusal_writes_nothing_but_the_try(
        app, served, client, day, tomorrow):
    stop = day["mine"][0]
    deliver(client, served, stop, confirmation_code=stop.printed(0))  # today's visit used printed code no. 1
    visit_id, start = tomorrow[stop.recipient_id]
    later = Stop(visit_id, stop.lat, stop.lon, stop.secret, start, start + timedelta(hours=1),
                       stop.recipient_id, stop.address)
    with clock_at(start + timedelta(minutes=3)):
        assert check_in(client, served, later, who="provider").status_code == 201
    size = ledger_size(app)
    with clock_at(start + timedelta(minutes=58)) as now:
        refused = {
            "wrong": check_out(client, served, later, now, who="provider", confirmation_code=wrong_code(stop.secret, now)),
            "expired": check_out(client, served, later, now, who="provider",
                                 confirmation_code=stop.code(now - timedelta(minutes=3))),
            "reused": check_out(client, served, later, now, who="provider", confirmation_code=stop.printed(0)),
        }
    for outcome, response in refused.items():
        body = response.get_json()
        assert response.status_code == 422 and body["code"] == f"code_{outcome}", body
        assert list(body["errors"]) == ["confirmation_code"]
    assert "2 tries left" in refused["wrong"].get_json()["errors"]["confirmation_code"][0]
    assert ledger_size(app) == size and visit_status(app, visit_id) == "in_progress"
    with app.app_context():
        tries = db.session.execute(select(ConfirmationAttempt.outcome, ConfirmationAttempt.username,
                                          ConfirmationAttempt.card_id).where(ConfirmationAttempt.visit_id == visit_id)
                                   .order_by(ConfirmationAttempt.id)).all()
        assert [(outcome, who) for outcome, who, _ in tries] == [("wrong", "provider"), ("expired", "provider"),
                                                                 ("reused", "provider")]
        assert all(card is not None for _, _, card in tries)
        logged = db.session.scalars(select(AuditLog.changes).where(AuditLog.action == "confirmation_refused",
                                                                   AuditLog.entity_id == str(visit_id))
                                    .order_by(AuditLog.id)).all()
        assert [c["outcome"] for c in logged] == ["wrong", "expired", "reused"]
        assert [c["tries"] for c in logged] == [1, 2, 3] and all(c["card_no"] == 1 for c in logged)
        card = db.session.scalar(select(ConfirmationCard).where(ConfirmationCard.recipient_id == stop.recipient_id))
        assert card.printed_next == 1  # nothing spent by the refusals


def test_the_last_wrong_try_flags_the_visit_and_alerts_its_provider_and_then_no_code_is_taken(
        app, served, client, day):
    stop = day["mine"][0]
    tries = app.config["SERVICEHUB_CODE_TRIES"]
    assert tries == 3
    with clock_at(stop.start + timedelta(minutes=3)):
        assert check_in(client, served, stop).status_code == 201
    size = ledger_size(app)
    with clock_at(stop.start + timedelta(minutes=58)) as now:
        for n in range(1, tries + 1):
            wrong = check_out(client, served, stop, now, confirmation_code=wrong_code(stop.secret, now))
            assert wrong.status_code == 422 and wrong.get_json()["code"] == "code_wrong"
            assert f"{tries - n} tries left" in wrong.get_json()["errors"]["confirmation_code"][0]
            raised = exceptions_of(app, stop.id)
            assert ("code_failed" in raised) == (n == tries)
        locked = check_out(client, served, stop, now)  # the right code, too late
        assert locked.status_code == 409 and locked.get_json()["code"] == "code_locked"
        assert "confirmation_code" in locked.get_json()["errors"]
    assert ledger_size(app) == size and visit_status(app, stop.id) == "in_progress"
    failed = exceptions_of(app, stop.id)["code_failed"]
    assert failed.status == "open" and failed.details == {"tries": tries}
    alerts = get(client, served, "/api/v1/alerts", "provider", kind="code_failed").get_json()
    assert len(alerts) == 1 and alerts[0]["visit_id"] == stop.id and f"{tries} wrong" in alerts[0]["message"]
    assert get(client, served, "/api/v1/alerts", "manager", kind="code_failed").get_json() == []
    with app.app_context():
        outcomes = db.session.scalars(select(ConfirmationAttempt.outcome).where(ConfirmationAttempt.visit_id == stop.id)
                                      .order_by(ConfirmationAttempt.id)).all()
        assert outcomes == ["wrong"] * tries + ["locked"]
        assert db.session.scalar(select(func.count(Alert.id)).where(Alert.kind == "code_failed")) == 1
    # The recipient signs instead: delivered, and the failed codes stay on its record.
    with clock_at(stop.start + timedelta(minutes=59)):
        signed = post(client, served, f"/api/v1/visits/{stop.id}/check-out",
                      {"lat": stop.lat, "lon": stop.lon, "tasks": ["floors"], "confirmation_method": "signature",
                       "signature": signature(), "satisfaction": 4})
    assert signed.status_code == 201 and signed.get_json()["flags"] == ["code_failed"]
    with app.app_context():
        assert db.session.get(Visit, stop.id).delivery_exception is True


def test_a_code_for_a_recipient_without_a_card_is_refused_and_a_signature_is_asked_for(app, served, client, day):
    stop = day["mine"][0]
    with app.app_context():
        card = db.session.scalar(select(ConfirmationCard).where(ConfirmationCard.recipient_id == stop.recipient_id))
        card.revoked_at = card.issued_at  # the card was lost and not replaced yet
        db.session.commit()
    with clock_at(stop.start + timedelta(minutes=3)):
        assert check_in(client, served, stop).status_code == 201
    with clock_at(stop.start + timedelta(minutes=58)) as now:
        refused = check_out(client, served, stop, now)
        assert refused.status_code == 422 and refused.get_json()["code"] == "code_no_card"
        assert "signature" in refused.get_json()["message"]
        signed = check_out(client, served, stop, now, confirmation_method="signature", confirmation_code=None,
                           signature=signature())
    assert signed.status_code == 201 and signed.get_json()["flags"] == []  # no card: not a failed code
    with app.app_context():
        assert db.session.scalars(select(ConfirmationAttempt.outcome)).all() == ["no_card"]


def test_a_signature_confirms_but_a_blank_pad_or_no_image_does_not(app, served, client, day):
    stop = day["mine"][0]
    with clock_at(stop.start + timedelta(minutes=3)):
        assert check_in(client, served, stop).status_code == 201
    size = ledger_size(app)
    body = {"lat": stop.lat, "lon": stop.lon, "tasks": ["floors", "kitchen"], "confirmation_method": "signature"}
    with clock_at(stop.start + timedelta(minutes=58)):
        for bad in (signature(ink=False), "data:image/jpeg;base64,AAAA", SIGNATURE_PREFIX + "%%%", None):
            refused = post(client, served, f"/api/v1/visits/{stop.id}/check-out", {**body, "signature": bad})
            assert refused.status_code == 422 and list(refused.get_json()["errors"]) == ["signature"], bad
        assert ledger_size(app) == size and count(app, select(func.count(ConfirmationAttempt.id))) == 0
        done = post(client, served, f"/api/v1/visits/{stop.id}/check-out", {**body, "signature": signature()})
    assert done.status_code == 201 and done.get_json()["confirmation_method"] == "signature"
    assert done.get_json()["flags"] == []


def test_a_visit_recorded_without_confirmation_is_flagged(app, served, client, day):
    record = deliver(client, served, day["mine"][0], confirmation_method="none", confirmation_code=None)
    assert record["flags"] == ["no_confirmation"]


# --- corrections -------------------------------------------------------------------------------------------------


def test_a_correction_stays_on_the_visits_day_and_within_the_longest_stay_of_its_service(app, served, client, day):
    stop = day["mine"][0]
    delivered = deliver(client, served, stop)
    started = datetime.fromisoformat(delivered["started_at"])
    size = ledger_size(app)
    margin = timedelta(hours=app.config["SERVICEHUB_CORRECTION_MARGIN_HOURS"])
    _, midnight = today_of(app)
    refused = {
        "74 hours": (correct(client, served, delivered["id"], ended_at=(started + timedelta(hours=74)).isoformat()),
                     "outside_day", {"ended_at"}),
        "two months on": (correct(client, served, delivered["id"],
                                  started_at=(started + timedelta(days=61)).isoformat(),
                                  ended_at=(started + timedelta(days=61, hours=1)).isoformat()),
                          "outside_day", {"started_at", "ended_at"}),
        "before the margin": (correct(client, served, delivered["id"],
                                      started_at=(midnight - margin - timedelta(minutes=1)).isoformat()),
                              "outside_day", {"started_at"}),
        "longer than the service": (correct(client, served, delivered["id"],
                                            started_at=midnight.isoformat(),
                                            ended_at=(midnight + timedelta(minutes=361)).isoformat()),
                                    "too_long", {"ended_at"}),
        "backwards": (correct(client, served, delivered["id"], ended_at=(started - timedelta(minutes=5)).isoformat()),
                      "validation_error", {"ended_at"}),
    }
    for story, (response, code, fields) in refused.items():
        body = response.get_json()
        assert response.status_code == 422 and body["code"] == code and set(body["errors"]) == fields, (story, body)
    assert "give or take 2 h" in refused["74 hours"][0].get_json()["errors"]["ended_at"][0]
    assert ledger_size(app) == size
    with app.app_context():
        assert db.session.get(Visit, stop.id).service_type.max_duration_min == 360  # LC02: 3 × its 2 hours
    longest = correct(client, served, delivered["id"], started_at=(midnight - margin).isoformat(),
                      ended_at=(midnight - margin + timedelta(minutes=360)).isoformat())
    assert longest.status_code == 201, longest.get_json()
    assert {"edited_times", "long_visit"} <= set(longest.get_json()["flags"])


def test_satisfaction_is_the_recipients_and_no_correction_changes_it(app, served, client, day):
    from servicehub.errors import ValidationFailed
    from servicehub.visits import services

    stop = day["mine"][0]
    delivered = deliver(client, served, stop)
    size = ledger_size(app)
    for who in ("caregiver", "provider"):
        refused = correct(client, served, delivered["id"], who=who, reason_code="data_entry", satisfaction=3)
        assert refused.status_code == 422 and list(refused.get_json()["errors"]) == ["satisfaction"]
    old_reason = correct(client, served, delivered["id"], reason_code="wrong_satisfaction")
    assert old_reason.status_code == 422 and "reason_code" in old_reason.get_json()["errors"]
    with app.app_context(), pytest.raises(ValidationFailed) as refused:
        services.correct(provider_of(served["org"]), delivered["id"], "k-satisfaction",
                         {"reason_code": "data_entry", "notes": "对象说打错了", "satisfaction": 1})
    assert refused.value.code == "satisfaction_not_editable" and "satisfaction" in refused.value.errors
    assert ledger_size(app) == size
    fixed = correct(client, served, delivered["id"], reason_code="wrong_tasks", tasks=["floors", "kitchen"])
    assert fixed.status_code == 201 and fixed.get_json()["satisfaction"] == 5  # carried over, never changed


def test_a_correction_names_only_tasks_of_the_services_checklist(app, served, client, day):
    delivered = deliver(client, served, day["mine"][0])
    size = ledger_size(app)
    refused = correct(client, served, delivered["id"], reason_code="wrong_tasks", tasks=["floors", "fly"])
    assert refused.status_code == 422 and list(refused.get_json()["errors"]) == ["tasks"]
    assert ledger_size(app) == size


def test_a_caregivers_retimed_correction_waits_for_the_provider_and_a_change_of_tasks_does_not(
        app, served, client, day):
    stop = day["mine"][0]
    delivered = deliver(client, served, stop, tasks=[])
    assert set(exceptions_of(app, stop.id)) == {"no_tasks"}
    with clock_at(stop.start + timedelta(hours=2)):
        tasks = correct(client, served, delivered["id"], who="caregiver", reason_code="wrong_tasks", notes="漏勾",
                        tasks=["floors", "bed"])
        assert tasks.status_code == 201 and "pending_approval" not in tasks.get_json()["flags"]
        with app.app_context():
            assert effective_delivery(stop.id).id == tasks.get_json()["id"]  # in force at once
        assert exceptions_of(app, stop.id)["no_tasks"].status == "cleared"
        retimed = correct(client, served, delivered["id"], who="caregiver", notes="忘记签出",
                          ended_at=(stop.start + timedelta(minutes=65)).isoformat())
        assert retimed.status_code == 201 and "pending_approval" in retimed.get_json()["flags"]
        assert retimed.get_json()["tasks"] == ["bed", "floors"]  # the correction in force, retimed
        with app.app_context():
            assert effective_delivery(stop.id).id == tasks.get_json()["id"]
        assert "edited_times" not in exceptions_of(app, stop.id)  # not in force: nothing edited yet
        assert post(client, served, f"/api/v1/service-records/{retimed.get_json()['id']}/approve",
                    {}).status_code == 403
        assert post(client, served, f"/api/v1/service-records/{retimed.get_json()['id']}/approve", {},
                    who="provider").status_code == 201
    with app.app_context():
        assert effective_delivery(stop.id).id == retimed.get_json()["id"]
    raised = exceptions_of(app, stop.id)
    assert raised["edited_times"].status == "open" and raised["no_tasks"].status == "cleared"


def test_a_pending_correction_that_a_later_one_replaced_is_not_approved(app, served, client, day):
    stop = day["mine"][0]
    delivered = deliver(client, served, stop)
    with clock_at(stop.start + timedelta(hours=2)):
        retimed = correct(client, served, delivered["id"], who="caregiver", notes="忘记签出",
                          ended_at=(stop.start + timedelta(minutes=65)).isoformat()).get_json()
        assert "pending_approval" in retimed["flags"]
        tasks = correct(client, served, delivered["id"], reason_code="wrong_tasks", notes="回访核实",
                        tasks=["floors", "kitchen"]).get_json()  # the provider's, with the times in force
        size = ledger_size(app)
        late = post(client, served, f"/api/v1/service-records/{retimed['id']}/approve", {}, who="provider")
    assert late.status_code == 409 and late.get_json()["code"] == "superseded", late.get_json()
    assert ledger_size(app) == size
    with app.app_context():
        assert effective_delivery(stop.id).id == tasks["id"]


@pytest.fixture
def frozen_month(app, served, client, day):
    """Today's first stop delivered, and this month's report of the provider's contract frozen (as the monthly job
    does at the start of next month) with its exceptions open."""
    from servicehub.evaluation.services import freeze_contract_month

    stop = day["mine"][0]
    delivered = deliver(client, served, stop)
    today, _ = today_of(app)
    next_month = (today.replace(day=28) + timedelta(days=4)).replace(day=2)
    with app.app_context(), clock_at(local_midnight(next_month) + timedelta(hours=3)):
        contract = db.session.scalar(select(Contract.id).where(Contract.organisation_id == served["org"]))
        freeze_contract_month(COMMAND_LINE, contract, today.strftime("%Y-%m"), accept_open_exceptions=True)
    return stop, delivered


def test_a_correction_of_a_frozen_month_counts_only_once_the_bureau_approves_it(app, served, client, frozen_month):
    stop, delivered = frozen_month
    ended = datetime.fromisoformat(delivered["ended_at"]) + timedelta(minutes=10)
    correction = correct(client, served, delivered["id"], reason_code="wrong_time", notes="家属确认多服务了十分钟",
                         ended_at=ended.isoformat())
    assert correction.status_code == 201, correction.get_json()
    correction = correction.get_json()
    assert "pending_bureau" in correction["flags"] and "pending_approval" not in correction["flags"]
    with app.app_context():
        assert effective_delivery(stop.id).id == delivered["id"]
        assert db.session.get(Visit, stop.id).delivery_record_id == delivered["id"]
    frozen = exceptions_of(app, stop.id)["frozen_month_correction"]
    assert (frozen.status, frozen.reason_code, frozen.resolution_note, frozen.resolved_by) == \
        ("resolved", "data_entry_error", "家属确认多服务了十分钟", "provider")
    assert frozen.details["correction_id"] == correction["id"]
    assert steps_of(app, frozen.id) == ["raised", "resolved"]

    # The provider cannot wave its own correction through; the bureau can.
    assert act(client, served, f"/api/v1/evv-exceptions/{frozen.id}/decide", {"decision": "approve"},
                who="provider").status_code == 403
    decided = act(client, served, f"/api/v1/evv-exceptions/{frozen.id}/decide", {"decision": "approve"},
                   who="manager")
    assert decided.status_code == 200 and decided.get_json()["status"] == "approved"
    with app.app_context():
        approval = db.session.scalar(select(ServiceRecord).where(ServiceRecord.kind == "approval",
                                                                 ServiceRecord.refers_to_id == correction["id"]))
        assert (approval.reason_code, approval.recorded_by) == ("bureau", "manager")
        assert effective_delivery(stop.id).id == correction["id"]
        assert db.session.get(Visit, stop.id).delivery_record_id == correction["id"]
    raised = exceptions_of(app, stop.id)
    assert raised["frozen_month_correction"].status == "approved"  # the approval's own entry changes nothing of it
    assert raised["edited_times"].status == "open"  # the times in force are now edited: explained separately


def test_a_further_correction_of_a_frozen_month_comes_explained_too_and_needs_the_bureau_again(
        app, served, client, frozen_month):
    stop, delivered = frozen_month
    ended = datetime.fromisoformat(delivered["ended_at"])
    first = correct(client, served, delivered["id"], notes="家属确认多服务了十分钟",
                    ended_at=(ended + timedelta(minutes=10)).isoformat()).get_json()
    frozen = exceptions_of(app, stop.id)["frozen_month_correction"]
    assert act(client, served, f"/api/v1/evv-exceptions/{frozen.id}/decide", {"decision": "approve"},
               who="manager").status_code == 200
    with app.app_context():
        assert effective_delivery(stop.id).id == first["id"]
    second = correct(client, served, delivered["id"], reason_code="data_entry", notes="再次核实，实为多服务二十分钟",
                     ended_at=(ended + timedelta(minutes=20)).isoformat())
    assert second.status_code == 201 and "pending_bureau" in second.get_json()["flags"]
    second = second.get_json()
    with app.app_context():
        assert effective_delivery(stop.id).id == first["id"]  # the approved one, until the bureau says otherwise
    again = exceptions_of(app, stop.id)["frozen_month_correction"]
    assert (again.status, again.resolution_note, again.reason_code, again.decided_by) == \
        ("resolved", "再次核实，实为多服务二十分钟", "data_entry_error", "")
    assert again.details["correction_id"] == second["id"]
    assert steps_of(app, frozen.id) == ["raised", "resolved", "approved", "reopened", "resolved"]
    assert act(client, served, f"/api/v1/evv-exceptions/{frozen.id}/decide", {"decision": "approve"},
               who="manager").status_code == 200
    with app.app_context():
        assert effective_delivery(stop.id).id == second["id"]
        approvals = db.session.scalars(select(ServiceRecord.refers_to_id).where(
            ServiceRecord.kind == "approval", ServiceRecord.reason_code == "bureau").order_by(ServiceRecord.id)).all()
        assert approvals == [first["id"], second["id"]]


# --- outcomes ----------------------------------------------------------------------------------------------------


@pytest.fixture
def planned_tomorrow(app, served):
    """Tomorrow's visits, not on a published roster yet: [(visit id, the opening of its window)]."""
    with app.app_context():
        visits = db.session.scalars(select(Visit).where(Visit.service_date == district_today() + timedelta(days=1))
                                    .order_by(Visit.id)).all()
        assert visits and {v.status for v in visits} == {"planned"}
        return [(v.id, local_midnight(v.service_date) + timedelta(hours=v.window_start.hour,
                                                                   minutes=v.window_start.minute)) for v in visits]


def cancel(client, served, visit_id, who="provider"):
    return post(client, served, f"/api/v1/visits/{visit_id}/outcome",
                {"outcome": "cancelled", "reason": "家属临时安排外出"}, who=who)


def test_a_visit_is_cancelled_only_before_its_window_opens_and_late_notice_is_an_exception(
        app, served, client, planned_tomorrow):
    (early, opens_early), (late, opens_late), (opened, opens) = planned_tomorrow[:3]
    with clock_at(opens + timedelta(minutes=1)):
        refused = cancel(client, served, opened)
    assert refused.status_code == 409 and refused.get_json()["code"] == "window_opened"
    assert "outcome" in refused.get_json()["errors"] and visit_status(app, opened) == "planned"
    with clock_at(opens - timedelta(hours=3)):
        assert cancel(client, served, early).status_code == 201
    assert visit_status(app, early) == "cancelled" and exceptions_of(app, early) == {}
    notice = app.config["SERVICEHUB_EVV_CANCEL_NOTICE_HOURS"]
    with clock_at(opens_late - timedelta(hours=notice) + timedelta(minutes=30)):
        assert cancel(client, served, late).status_code == 201
    raised = exceptions_of(app, late)
    assert set(raised) == {"cancelled_late"} and raised["cancelled_late"].details == {"hours_before": notice - 0.5}
    with clock_at(opens + timedelta(minutes=1)):  # once the window is open, it is recorded as missed
        # A caregiver sees only their own visits; the provider records it.
        missed = post(client, served, f"/api/v1/visits/{opened}/outcome", {"outcome": "missed", "reason": "not_home"},
                      who="provider")
    assert missed.status_code == 409 and missed.get_json()["code"] == "wrong_status"  # not on a published roster


# --- idempotency -------------------------------------------------------------------------------------------------


def test_the_same_key_with_another_body_is_refused_and_with_the_same_body_returns_the_same_record(
        app, served, client, day):
    stop, same = day["mine"][0], key()
    with clock_at(stop.start + timedelta(minutes=3)):
        assert check_in(client, served, stop).status_code == 201
    with clock_at(stop.start + timedelta(minutes=58)) as now:
        body = {"lat": stop.lat, "lon": stop.lon, "tasks": ["floors"], "confirmation_method": "code",
                "confirmation_code": stop.code(now), "satisfaction": 5}
        path = f"/api/v1/visits/{stop.id}/check-out"
        first = post(client, served, path, body, headers=same)
        again = post(client, served, path, body, headers=same)  # the code is not spent twice
        other = post(client, served, path, {**body, "satisfaction": 1}, headers=same)
    assert first.status_code == again.status_code == 201 and first.get_json()["id"] == again.get_json()["id"]
    assert other.status_code == 409 and other.get_json()["code"] == "idempotency_key_reused"
    assert "idempotency_key" in other.get_json()["errors"]
    size = ledger_size(app)
    fix = key()
    ended = (stop.start + timedelta(minutes=61)).isoformat()
    one = correct(client, served, first.get_json()["id"], headers=fix, ended_at=ended)
    two = correct(client, served, first.get_json()["id"], headers=fix, ended_at=ended)
    three = correct(client, served, first.get_json()["id"], headers=fix, ended_at=ended, notes="另一个理由")
    assert one.status_code == two.status_code == 201 and one.get_json()["id"] == two.get_json()["id"]
    assert three.status_code == 409 and three.get_json()["code"] == "idempotency_key_reused"
    assert ledger_size(app) == size + 1


# --- the exception queue -----------------------------------------------------------------------------------------


@pytest.fixture
def elsewhere(app, served):
    """Another organisation serving a recipient in another town (丁卯), who called off tomorrow's visit an hour
    before its window opened: a `cancelled_late` exception that is neither the provider's nor 大港's."""
    from servicehub.scheduling import services as scheduling
    from servicehub.visits import services

    with app.app_context():
        org = f.organisation_ids()[1]
        f.worker(org, name="赵护理", availability=EVERY_DAY, start_lat=32.155, start_lon=119.52, employee_no="B1")
        f.contract(org, areas=[f.DINGMAO])
        person = f.recipient(name="丁卯对象", id_number=f.id_number(), area=f.DINGMAO)
        need = f.need(person.id, quantity=7, duration_min=60)
        accept_all(org, [need.id])
        scheduling.generate_visits(COMMAND_LINE)
        visit = db.session.scalar(select(Visit).where(Visit.recipient_id == person.id,
                                                      Visit.service_date == district_today() + timedelta(days=1)))
        opens = local_midnight(visit.service_date) + timedelta(hours=visit.window_start.hour,
                                                               minutes=visit.window_start.minute)
        with clock_at(opens - timedelta(hours=1)):
            services.record_outcome(provider_of(org), visit.id, "elsewhere-cancel-1", "cancelled", "对象外出")
        exception = db.session.scalar(select(EvvException).where(EvvException.visit_id == visit.id))
        assert exception.code == "cancelled_late"
        return {"org": org, "visit": visit.id, "exception": exception.id, "town": exception.town_id}


@pytest.fixture
def queued(app, served, client, day, elsewhere):
    """The provider's first stop started 25 minutes late (late_start), its second delivered without
    confirmation (no_confirmation); and the other organisation's late cancellation."""
    late, unconfirmed = day["mine"][0], day["mine"][1]
    deliver(client, served, late, arrive=25, leave=60)
    deliver(client, served, unconfirmed, confirmation_method="none", confirmation_code=None)
    return {"late": exceptions_of(app, late.id)["late_start"].id,
            "unconfirmed": exceptions_of(app, unconfirmed.id)["no_confirmation"].id,
            "elsewhere": elsewhere["exception"], "stops": (late, unconfirmed), "other_org": elsewhere["org"]}


def listed(client, served, who, **query) -> list[dict]:
    response = get(client, served, "/api/v1/evv-exceptions", who, **query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_each_reader_sees_the_queue_they_answer_for(app, served, client, day, queued):
    mine = {queued["late"], queued["unconfirmed"]}
    assert {e["id"] for e in listed(client, served, "provider")} == mine
    assert {e["id"] for e in listed(client, served, "manager")} == mine | {queued["elsewhere"]}
    assert {e["id"] for e in listed(client, served, "auditor")} == mine | {queued["elsewhere"]}
    assert {e["id"] for e in listed(client, served, "manager.dagang")} == mine  # the town's recipients only
    assert get(client, served, "/api/v1/evv-exceptions", "caregiver").status_code == 403
    assert get(client, served, "/api/v1/evv-exceptions/counts", "caregiver").status_code == 403

    late = listed(client, served, "provider", code="late_start")
    assert [e["id"] for e in late] == [queued["late"]] and late[0]["details"]["minutes"] == 25.0
    assert (late[0]["status"], late[0]["service_type"], late[0]["worker_id"]) == ("open", "LC02", day["worker"])
    assert listed(client, served, "manager", organisation_id=queued["other_org"])[0]["id"] == queued["elsewhere"]
    assert listed(client, served, "provider", organisation_id=queued["other_org"]) == []
    assert {e["id"] for e in listed(client, served, "manager", worker_id=day["worker"])} == mine
    this_month = today_of(app)[0].strftime("%Y-%m")
    assert mine <= {e["id"] for e in listed(client, served, "manager", month=this_month)}
    assert listed(client, served, "manager", month="2020-01") == []
    assert listed(client, served, "provider", status="approved") == []
    assert get(client, served, "/api/v1/evv-exceptions", "provider", month="2026-13").status_code == 422
    assert get(client, served, "/api/v1/evv-exceptions", "provider", code="bogus").status_code == 422

    counts = get(client, served, "/api/v1/evv-exceptions/counts", "provider").get_json()
    assert counts == {"late_start": {"open": 1}, "no_confirmation": {"open": 1}}
    assert get(client, served, "/api/v1/evv-exceptions/counts", "manager").get_json()["cancelled_late"] == {"open": 1}

    detail = get(client, served, f"/api/v1/evv-exceptions/{queued['late']}", "provider")
    assert detail.status_code == 200 and [s["action"] for s in detail.get_json()["steps"]] == ["raised"]
    for who in ("provider", "manager.dagang"):
        assert get(client, served, f"/api/v1/evv-exceptions/{queued['elsewhere']}", who).status_code == 404


def test_the_provider_explains_and_the_bureau_decides(app, served, client, queued):
    late, unconfirmed = queued["late"], queued["unconfirmed"]
    resolve = f"/api/v1/evv-exceptions/{late}/resolve"
    assert act(client, served, resolve, {"reason_code": "traffic_delay", "note": ""}).status_code == 422
    assert act(client, served, resolve, {"reason_code": "because", "note": "x"}).status_code == 422
    assert act(client, served, resolve, {"reason_code": "traffic_delay", "note": "路上堵车"},
                who="manager").status_code == 403
    assert act(client, served, f"/api/v1/evv-exceptions/{queued['elsewhere']}/resolve",
                {"reason_code": "traffic_delay", "note": "不是我们的"}).status_code == 404
    explained = act(client, served, resolve, {"reason_code": "traffic_delay", "note": "上一户服务延时，路上堵车"})
    assert explained.status_code == 200, explained.get_json()
    assert (explained.get_json()["status"], explained.get_json()["resolved_by"]) == ("resolved", "provider")

    decide = f"/api/v1/evv-exceptions/{late}/decide"
    # The organisation that raised it cannot approve it: refused by the rule, named, and nothing changes.
    by_provider = act(client, served, decide, {"decision": "approve"})
    assert by_provider.status_code == 403 and by_provider.get_json()["code"] == "not_the_bureau"
    by_auditor = act(client, served, decide, {"decision": "approve"}, who="auditor")
    assert by_auditor.status_code == 403 and by_auditor.get_json()["code"] == "not_the_bureau"
    with app.app_context(), pytest.raises(PermissionDenied) as refused:
        queue.decide(provider_of(served["org"]), late, approve=True)
    assert refused.value.code == "not_the_bureau"
    assert exceptions_of(app, queued["stops"][0].id)["late_start"].status == "resolved"

    unexplained = act(client, served, f"/api/v1/evv-exceptions/{unconfirmed}/decide", {"decision": "approve"},
                       who="manager")
    assert unexplained.status_code == 409 and unexplained.get_json()["code"] == "not_resolved"
    no_note = act(client, served, decide, {"decision": "reject"}, who="manager")
    assert no_note.status_code == 422 and "note" in no_note.get_json()["errors"]
    rejected = act(client, served, decide, {"decision": "reject", "note": "回访与记录不符"}, who="manager")
    assert rejected.status_code == 200 and rejected.get_json()["status"] == "rejected"
    assert {e["id"] for e in listed(client, served, "provider")} == {late, unconfirmed}  # still waiting
    again = act(client, served, resolve, {"reason_code": "emergency", "note": "上一户对象突发不适，陪同就医"})
    assert again.status_code == 200 and again.get_json()["decision_note"] == ""
    approved = act(client, served, decide, {"decision": "approve"}, who="manager.dagang")
    assert approved.status_code == 200
    assert (approved.get_json()["status"], approved.get_json()["decided_by"]) == ("approved", "manager.dagang")
    assert act(client, served, decide, {"decision": "approve"}, who="manager.dagang").status_code == 200  # the same
    assert act(client, served, f"/api/v1/evv-exceptions/{queued['elsewhere']}/decide", {"decision": "approve"},
                who="manager.dagang").status_code == 404  # another town's
    assert steps_of(app, late) == ["raised", "resolved", "rejected", "resolved", "approved"]
    assert [e["id"] for e in listed(client, served, "provider")] == [unconfirmed]
    assert [e["id"] for e in listed(client, served, "provider", status="approved")] == [late]


def test_many_are_explained_or_decided_all_together_or_not_at_all(app, served, client, queued):
    late, unconfirmed, other = queued["late"], queued["unconfirmed"], queued["elsewhere"]
    note = {"reason_code": "unable_to_confirm", "note": "对象视力不好，已电话回访确认"}
    partly = act(client, served, "/api/v1/evv-exceptions/resolve", {**note, "ids": [late, other]})
    assert partly.status_code == 404
    assert exceptions_of(app, queued["stops"][0].id)["late_start"].status == "open"  # not even the first
    both = act(client, served, "/api/v1/evv-exceptions/resolve", {**note, "ids": [late, unconfirmed]})
    assert both.status_code == 200 and {e["status"] for e in both.get_json()} == {"resolved"}
    mixed = act(client, served, "/api/v1/evv-exceptions/decide", {"decision": "approve", "ids": [late, other]},
                 who="manager")
    assert mixed.status_code == 409 and mixed.get_json()["code"] == "not_resolved"
    assert exceptions_of(app, queued["stops"][0].id)["late_start"].status == "resolved"
    assert act(client, served, "/api/v1/evv-exceptions/decide", {"decision": "reject", "ids": [late]},
                who="manager").status_code == 422
    decided = act(client, served, "/api/v1/evv-exceptions/decide", {"decision": "approve",
                                                                      "ids": [late, unconfirmed]}, who="manager")
    assert decided.status_code == 200 and {e["status"] for e in decided.get_json()} == {"approved"}
    assert listed(client, served, "provider") == []


def test_a_correction_that_removes_the_cause_clears_the_exception(app, served, client, day):
    stop = day["mine"][0]
    delivered = deliver(client, served, stop, tasks=[])
    no_tasks = exceptions_of(app, stop.id)["no_tasks"]
    assert no_tasks.status == "open"
    fixed = correct(client, served, delivered["id"], reason_code="wrong_tasks", notes="回访核实，补勾服务项目",
                    tasks=["floors", "kitchen"])
    assert fixed.status_code == 201 and fixed.get_json()["flags"] == []
    assert exceptions_of(app, stop.id)["no_tasks"].status == "cleared"
    assert steps_of(app, no_tasks.id) == ["raised", "cleared"]
    assert listed(client, served, "provider") == []
    assert [e["code"] for e in listed(client, served, "provider", status="cleared")] == ["no_tasks"]
    with app.app_context():
        assert db.session.get(Visit, stop.id).delivery_exception is False


def test_a_decided_exception_opens_again_when_its_figures_change(app, served, client, day):
    stop = day["mine"][0]
    delivered = deliver(client, served, stop, arrive=25, leave=80)
    late = exceptions_of(app, stop.id)["late_start"]
    assert act(client, served, f"/api/v1/evv-exceptions/{late.id}/resolve",
                {"reason_code": "traffic_delay", "note": "路上堵车"}).status_code == 200
    assert act(client, served, f"/api/v1/evv-exceptions/{late.id}/decide", {"decision": "approve"},
                who="manager").status_code == 200
    same_times = correct(client, served, delivered["id"], reason_code="wrong_tasks", tasks=["floors", "bed"])
    assert same_times.status_code == 201
    assert exceptions_of(app, stop.id)["late_start"].status == "approved"  # its figures did not change
    later = correct(client, served, delivered["id"], notes="家属说实际是十点半后才到",
                    started_at=(stop.start + timedelta(minutes=35)).isoformat())
    assert later.status_code == 201
    reopened = exceptions_of(app, stop.id)["late_start"]
    assert reopened.status == "open" and reopened.details == {"minutes": 35.0}
    assert steps_of(app, late.id) == ["raised", "resolved", "approved", "reopened"]
    assert late.id in {e["id"] for e in listed(client, served, "provider")}


# --- the story -----------------------------------------------------------------------------------------------------


def test_an_office_check_in_and_out_with_the_card_read_off_and_the_address_typed_in_is_not_paid(
        app, served, client, day):
    """A provider admin read a recipient's card code, checked in and out of a visit from the office with the
    recipient's own coordinates, backdated 7 hours, no tasks, satisfaction 5."""
    from servicehub.evaluation.services import load_settlement

    stop = day["mine"][0]
    lat, lon = stop.address
    evening = today_of(app)[1] + timedelta(hours=21)
    with clock_at(evening) as now:
        arrived = post(client, served, f"/api/v1/visits/{stop.id}/check-in",
                       {"lat": lat, "lon": lon, "at": (now - timedelta(hours=8)).isoformat()}, who="provider")
        assert arrived.status_code == 201, arrived.get_json()
        done = post(client, served, f"/api/v1/visits/{stop.id}/check-out",
                    {"lat": lat, "lon": lon, "at": (now - timedelta(hours=7)).isoformat(), "tasks": [],
                     "confirmation_method": "code", "confirmation_code": stop.printed(0), "satisfaction": 5},
                    who="provider")
    assert done.status_code == 201, done.get_json()  # the code itself is valid: it was read off the card
    assert {"manual_entry", "late_submission", "no_tasks"} <= set(done.get_json()["flags"])
    raised = exceptions_of(app, stop.id)
    assert {"manual_entry", "late_submission", "no_tasks"} <= set(raised)
    assert raised["manual_entry"].details == {"recorded_by": ["provider"], "typed_position": ["check_in", "delivery"]}
    assert raised["late_submission"].details == {"hours": {"check_in": 8.0, "delivery": 7.0}}
    in_queue = listed(client, served, "manager", code="manual_entry")
    assert [e["visit_id"] for e in in_queue] == [stop.id]

    def settled():
        with app.app_context():
            contract = db.session.scalar(select(Contract).where(Contract.organisation_id == served["org"]))
            today = district_today()
            month = load_settlement(contract, today.replace(day=1), today)
            (line,) = [line for line in month.lines if line.terms.service_type == "LC02"]
            assert db.session.get(Visit, stop.id).delivery_manual is True
            return line, month

    line, month = settled()
    assert (line.delivered, line.verified, line.unverified, line.amount_fen) == (1, 0, 1, 0)
    assert month.total_fen == 0 and [row["visit_id"] for row in month.unsettled] == [stop.id]
    assert {e["code"] for e in month.unsettled[0]["exceptions"]} >= {"manual_entry", "late_submission", "no_tasks"}

    # The provider explains each; the bureau rejects the manual entry: still not paid.
    for code, exception in raised.items():
        assert act(client, served, f"/api/v1/evv-exceptions/{exception.id}/resolve",
                    {"reason_code": "device_problem", "note": "手机坏了，办公室补录"}).status_code == 200, code
        verdict = {"decision": "reject", "note": "坐标为住址原值，无签到轨迹"} if code == "manual_entry" \
            else {"decision": "approve"}
        assert act(client, served, f"/api/v1/evv-exceptions/{exception.id}/decide", verdict,
                    who="manager").status_code == 200
    line, month = settled()
    assert (line.verified, line.unverified, line.rejected, month.total_fen) == (0, 1, 1, 0)
    assert month.unsettled[0]["exceptions"] == [{"code": "manual_entry", "status": "rejected"}]

