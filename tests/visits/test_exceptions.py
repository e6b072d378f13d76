"""The EVV exception rules without Flask or a database: for every code, a record that deserves it raises it and a
record just short of deserving it does not. Facts are built by hand."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from servicehub.visits.exceptions import Code, Entry, Thresholds, VisitFacts, find_exceptions

START = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)  # 10:00 in the district
ADDRESS = (32.2, 119.68)
NEAR = (32.20018, 119.68012)  # about 20 m away: what a phone at the door reads
THRESHOLDS = Thresholds()  # the settings' defaults: 15 min grace (5 meals), 30 min at the end, 300 m, 4 h, 2 h, 3 codes


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def check_in(**changes) -> Entry:
    fields = {"id": 1, "kind": "check_in", "received_at": START + minutes(3) + timedelta(seconds=5),
              "started_at": START + minutes(3), "lat": NEAR[0], "lon": NEAR[1], "distance_m": 20.0,
              "recorded_by": "caregiver"}
    return Entry(**{**fields, **changes})


def delivery(**changes) -> Entry:
    fields = {"id": 2, "kind": "delivery", "received_at": START + minutes(62) + timedelta(seconds=5),
              "started_at": START + minutes(3), "ended_at": START + minutes(62), "lat": NEAR[0], "lon": NEAR[1],
              "distance_m": 20.0, "recorded_by": "caregiver", "confirmation": "code", "tasks": 2, "refers_to_id": 1}
    return Entry(**{**fields, **changes})


def correction(**changes) -> Entry:
    fields = {"id": 3, "kind": "correction", "received_at": START + timedelta(days=1), "started_at": START + minutes(3),
              "ended_at": START + minutes(62), "lat": NEAR[0], "lon": NEAR[1], "distance_m": 20.0,
              "recorded_by": "provider", "by_worker": False, "confirmation": "code", "tasks": 2, "refers_to_id": 2,
              "reason_code": "wrong_time", "notes": "忘记签出"}
    return Entry(**{**fields, **changes})


def visit(*entries: Entry, **changes) -> VisitFacts:
    """A completed one-hour visit (checked in 3 minutes after the planned start, out an hour later, at the door,
    confirmed with a code, two tasks ticked) unless told otherwise."""
    fields = {"visit_id": 7, "status": "completed", "expected_start": START, "expected_end": START + minutes(60),
              "duration_min": 60, "address": ADDRESS, "entries": entries or (check_in(), delivery()),
              "has_checklist": True}
    return VisitFacts(**{**fields, **changes})


def codes(facts: VisitFacts, thresholds: Thresholds = THRESHOLDS) -> set[Code]:
    return {finding.code for finding in find_exceptions(facts, thresholds)}


def test_a_visit_delivered_as_planned_has_no_exception():
    assert find_exceptions(visit(), THRESHOLDS) == []


def late(by: float, meal: bool = False) -> VisitFacts:
    return visit(check_in(started_at=START + minutes(by)), delivery(started_at=START + minutes(by)), meal=meal)


def ending(at: float) -> VisitFacts:
    return visit(check_in(), delivery(ended_at=START + minutes(at)))


def serving(served: float) -> VisitFacts:
    return visit(check_in(started_at=START), delivery(started_at=START, ended_at=START + minutes(served)))


def typed(kind: str, lat: float) -> VisitFacts:
    place = {"lat": lat, "lon": ADDRESS[1]}
    return visit(check_in(**place) if kind == "check_in" else check_in(),
                 delivery(**place) if kind == "delivery" else delivery())


def corrected(**changes) -> VisitFacts:
    return visit(check_in(), delivery(), correction(**changes))


def submitted(after: timedelta) -> VisitFacts:
    return visit(check_in(), delivery(received_at=START + minutes(62) + after))


def overlapping(shared: float) -> VisitFacts:
    other_end = START + minutes(3 + shared)
    return replace(visit(), others=((8, START - minutes(60), other_end),))


def cancelled(notice: timedelta) -> VisitFacts:
    entry = Entry(id=1, kind="cancelled", received_at=START - notice, ended_at=START - notice, recorded_by="provider",
                  by_worker=False, outcome_reason="家属临时安排外出")
    return visit(entry, status="cancelled")


# (the code, facts that deserve it, facts of a close record that do not): each pair differs in one fact.
CASES = [
    pytest.param(Code.LATE_START, late(16), late(15), id="late_start"),
    pytest.param(Code.LATE_START, late(6, meal=True), late(5, meal=True), id="late_start-meal"),
    pytest.param(Code.EARLY_END, ending(29), ending(30), id="early_end"),
    pytest.param(Code.LATE_END, ending(91), ending(90), id="late_end"),
    pytest.param(Code.SHORT_VISIT, serving(29), serving(30), id="short_visit"),
    pytest.param(Code.LONG_VISIT, serving(121), serving(120), id="long_visit"),
    pytest.param(Code.FAR_CHECK_IN, visit(check_in(distance_m=301.0), delivery()),
                 visit(check_in(distance_m=300.0), delivery()), id="far_check_in"),
    pytest.param(Code.FAR_CHECK_OUT, visit(check_in(), delivery(distance_m=301.0)),
                 visit(check_in(), delivery(distance_m=300.0)), id="far_check_out"),
    pytest.param(Code.NO_CONFIRMATION, visit(check_in(), delivery(confirmation="none")),
                 visit(check_in(), delivery(confirmation="signature")), id="no_confirmation"),
    pytest.param(Code.CODE_FAILED, visit(code_failures=3), visit(code_failures=2), id="code_failed"),
    pytest.param(Code.NO_TASKS, visit(check_in(), delivery(tasks=0)), visit(check_in(), delivery(tasks=1)),
                 id="no_tasks"),
    pytest.param(Code.NO_TASKS, visit(check_in(), delivery(tasks=0)),
                 visit(check_in(), delivery(tasks=0), has_checklist=False), id="no_tasks-no_checklist"),
    pytest.param(Code.MANUAL_ENTRY, visit(check_in(), delivery(by_worker=False, recorded_by="provider")),
                 visit(check_in(), delivery(by_worker=True)), id="manual_entry-office_account"),
    pytest.param(Code.MANUAL_ENTRY, typed("check_in", ADDRESS[0]), typed("check_in", ADDRESS[0] + 1e-6),
                 id="manual_entry-typed_check_in"),
    pytest.param(Code.MANUAL_ENTRY, typed("delivery", ADDRESS[0]), typed("delivery", ADDRESS[0] + 1e-6),
                 id="manual_entry-typed_check_out"),
    pytest.param(Code.EDITED_TIMES, corrected(ended_at=START + minutes(70)),
                 corrected(reason_code="wrong_tasks", tasks=3), id="edited_times"),
    pytest.param(Code.EDITED_TIMES, corrected(ended_at=START + minutes(70)),
                 corrected(ended_at=START + minutes(70), flags=("pending_approval",)), id="edited_times-pending"),
    pytest.param(Code.LATE_SUBMISSION, submitted(timedelta(hours=4, seconds=1)), submitted(timedelta(hours=4)),
                 id="late_submission"),
    pytest.param(Code.OVERLAP, overlapping(6), overlapping(5), id="overlap"),
    pytest.param(Code.MISSED, visit(Entry(id=1, kind="missed", received_at=START + minutes(20),
                                          ended_at=START + minutes(20), outcome_reason="not_home"), status="missed"),
                 visit(status="published", entries=()), id="missed"),
    pytest.param(Code.CANCELLED_LATE, cancelled(timedelta(hours=2) - timedelta(seconds=1)),
                 cancelled(timedelta(hours=2)), id="cancelled_late"),
    pytest.param(Code.FROZEN_MONTH, corrected(flags=("pending_bureau",)), corrected(flags=("pending_approval",)),
                 id="frozen_month_correction"),
]


def test_every_code_has_its_cases():
    assert {case.values[0] for case in CASES} == set(Code)


@pytest.mark.parametrize(("code", "deserving", "close"), CASES)
def test_a_record_that_deserves_the_code_raises_it(code, deserving, close):
    assert code in codes(deserving)


@pytest.mark.parametrize(("code", "deserving", "close"), CASES)
def test_a_close_record_that_does_not_deserve_the_code_does_not_raise_it(code, deserving, close):
    assert code not in codes(close)


def test_the_findings_carry_the_figures_behind_them():
    found = {f.code: f.details for f in find_exceptions(late(16), THRESHOLDS)}
    assert found[Code.LATE_START] == {"minutes": 16.0}
    found = {f.code: f.details for f in find_exceptions(serving(29), THRESHOLDS)}
    assert found[Code.SHORT_VISIT] == {"minutes": 29.0, "planned": 60, "threshold": 30.0}
    office = visit(check_in(lat=ADDRESS[0], lon=ADDRESS[1], by_worker=False, recorded_by="provider"),
                   delivery(lat=ADDRESS[0], lon=ADDRESS[1], by_worker=False, recorded_by="provider"))
    found = {f.code: f.details for f in find_exceptions(office, THRESHOLDS)}
    assert found[Code.MANUAL_ENTRY] == {"recorded_by": ["provider"], "typed_position": ["check_in", "delivery"]}
    found = {f.code: f.details for f in find_exceptions(submitted(timedelta(hours=7)), THRESHOLDS)}
    assert found[Code.LATE_SUBMISSION] == {"hours": {"delivery": 7.0}}


def test_the_thresholds_are_the_districts():
    stricter = Thresholds(grace_min=10, distance_m=100.0, code_tries=2)
    assert Code.LATE_START in codes(late(11), stricter) and Code.LATE_START not in codes(late(11))
    far = visit(check_in(distance_m=150.0), delivery())
    assert Code.FAR_CHECK_IN in codes(far, stricter) and Code.FAR_CHECK_IN not in codes(far)
    assert Code.CODE_FAILED in codes(visit(code_failures=2), stricter)


def test_a_correction_counts_only_once_every_approval_it_waits_for_is_given():
    approval = Entry(id=4, kind="approval", received_at=START + timedelta(days=2), refers_to_id=3,
                     reason_code="provider", recorded_by="provider", by_worker=False)
    pending = correction(ended_at=START + minutes(20), flags=("pending_approval",), by_worker=True)
    assert Code.EARLY_END not in codes(visit(check_in(), delivery(), pending))
    assert Code.EARLY_END in codes(visit(check_in(), delivery(), pending, approval))


def test_a_correction_that_removes_the_cause_removes_the_code():
    assert Code.NO_TASKS in codes(visit(check_in(), delivery(tasks=0)))
    fixed = visit(check_in(), delivery(tasks=0), correction(reason_code="wrong_tasks", tasks=2))
    assert Code.NO_TASKS not in codes(fixed)


def test_a_visit_not_delivered_is_judged_by_its_outcome_only():
    never = visit(check_in(distance_m=5000.0), status="missed")  # a stray check-in, then missed
    assert codes(never) == {Code.MISSED}
    assert codes(cancelled(timedelta(days=1))) == set()


def test_findings_come_in_the_order_of_the_codes():
    messy = visit(check_in(started_at=START + minutes(20), distance_m=900.0, lat=ADDRESS[0], lon=ADDRESS[1]),
                  delivery(started_at=START + minutes(20), ended_at=START + minutes(25), confirmation="none", tasks=0,
                           received_at=START + timedelta(hours=9)), code_failures=3)
    found = [f.code for f in find_exceptions(messy, THRESHOLDS)]
    assert found == [code for code in Code if code in found]
    assert {Code.LATE_START, Code.EARLY_END, Code.SHORT_VISIT, Code.FAR_CHECK_IN, Code.NO_CONFIRMATION,
            Code.CODE_FAILED, Code.NO_TASKS, Code.MANUAL_ENTRY, Code.LATE_SUBMISSION} <= set(found)
