"""The pure rules of applications (servicehub/intake/rules.py), without Flask or a database: deadlines,
references, phone numbers, the public form's signed sum, discovery thresholds and the discovery checks."""

import random
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from servicehub.intake import rules
from servicehub.intake.rules import PersonFacts

SHANGHAI = ZoneInfo("Asia/Shanghai")
SECRET = b"test-secret-key"
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
TODAY = date(2026, 12, 1)  # a Tuesday


def local(y, m, d, hh=9, mm=15):
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


# --- due_at --------------------------------------------------------------------------------------------------


def test_an_emergency_is_due_one_hour_after_submission():
    assert rules.due_at(local(2026, 12, 4, 23, 30), True, 1, 3) == local(2026, 12, 5, 0, 30)  # a Friday night
    assert rules.due_at(local(2026, 12, 5, 10, 0), True, 1, 3) == local(2026, 12, 5, 11, 0)  # weekends count


@pytest.mark.parametrize(("submitted", "due"), [
    (local(2026, 11, 30, 9, 15), local(2026, 12, 3, 9, 15)),  # Monday -> Thursday
    (local(2026, 12, 2, 16, 45), local(2026, 12, 7, 16, 45)),  # Wednesday -> Monday
    (local(2026, 12, 4, 9, 15), local(2026, 12, 9, 9, 15)),  # Friday -> Wednesday
    (local(2026, 12, 5, 14, 5), local(2026, 12, 9, 14, 5)),  # Saturday -> Wednesday
    (local(2026, 12, 6, 23, 59), local(2026, 12, 9, 23, 59)),  # Sunday -> Wednesday
])
def test_a_normal_application_is_due_three_working_days_later_at_the_same_time(submitted, due):
    assert rules.due_at(submitted, False, 1, 3) == due
    assert rules.due_at(submitted, False, 1, 3).time() == submitted.time()


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(SHANGHAI)),
       st.integers(min_value=1, max_value=10))
def test_a_normal_deadline_is_a_later_working_day_at_the_same_time(submitted, working_days):
    due = rules.due_at(submitted, False, 1, working_days)
    assert due > submitted and due.weekday() < 5 and due.time() == submitted.time()
    between = [submitted.date() + timedelta(days=k) for k in range(1, (due.date() - submitted.date()).days + 1)]
    assert sum(1 for d in between if d.weekday() < 5) == working_days  # exactly that many working days
    assert (due.date() - submitted.date()).days <= working_days + 2 * (working_days // 5 + 1)


# A made-up National Day week: Thursday 1 to Wednesday 7 October off, Saturday 10 October worked in exchange.
NATIONAL_DAY = rules.WorkingCalendar(frozenset(date(2026, 10, d) for d in range(1, 8)), frozenset({date(2026, 10, 10)}))


@pytest.mark.parametrize(("submitted", "due"), [
    (local(2026, 9, 29), local(2026, 10, 9)),  # Tuesday: Wednesday 30, then nothing until Thursday 8 and Friday 9
    (local(2026, 9, 30, 17, 0), local(2026, 10, 10, 17, 0)),  # Wednesday: 8, 9, 10
    (local(2026, 10, 3), local(2026, 10, 10)),  # inside the holiday: 8, 9 and the Saturday worked
    (local(2026, 10, 8), local(2026, 10, 12)),  # Thursday: 9, 10, 12 (not Tuesday 13 as the week alone has it)
])
def test_working_days_skip_the_days_off_and_count_the_weekend_days_worked(submitted, due):
    assert rules.due_at(submitted, False, 1, 3, NATIONAL_DAY) == due


def test_a_working_calendar_is_the_week_with_its_exceptions():
    assert rules.WEEK.is_working(date(2026, 10, 1)) and not rules.WEEK.is_working(date(2026, 10, 10))
    assert not NATIONAL_DAY.is_working(date(2026, 10, 1)) and NATIONAL_DAY.is_working(date(2026, 10, 10))
    assert not NATIONAL_DAY.is_working(date(2026, 10, 4))  # a Sunday off is off either way
    assert NATIONAL_DAY.is_working(date(2026, 10, 9)) and not NATIONAL_DAY.is_working(date(2026, 10, 11))
    assert rules.due_at(local(2026, 9, 29), True, 1, 3, NATIONAL_DAY) == local(2026, 9, 29, 10, 15)  # hours count


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(SHANGHAI)),
       st.floats(min_value=0.25, max_value=48))
def test_an_emergency_deadline_is_exactly_the_hours_later(submitted, hours):
    assert rules.due_at(submitted, True, hours, 3) - submitted == timedelta(hours=hours)


def test_overdue_only_without_a_first_contact_and_after_the_deadline():
    due = local(2026, 12, 1, 10, 0)
    assert rules.is_overdue(due, None, due + timedelta(seconds=1))
    assert not rules.is_overdue(due, None, due)
    assert not rules.is_overdue(due, due - timedelta(minutes=5), due + timedelta(days=2))


# --- references -----------------------------------------------------------------------------------------------

REFERENCE = re.compile(r"^SQ-[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{4}-[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{4}$")


def test_a_new_reference_is_sq_and_eight_unambiguous_characters():
    made = {rules.new_reference(random.Random(seed)) for seed in range(300)}
    assert len(made) == 300 and all(REFERENCE.match(r) for r in made)
    assert not set("".join(made)) & set("01IO")
    assert set(rules.REFERENCE_ALPHABET).isdisjoint("01IO") and len(set(rules.REFERENCE_ALPHABET)) == 32
    assert rules.new_reference(random.Random(7)) == rules.new_reference(random.Random(7))  # the rng decides
    assert REFERENCE.match(rules.new_reference())  # the default, system randomness


@pytest.mark.parametrize("typed", ["SQ-7KQ4-MZ3P", "sq-7kq4-mz3p", "SQ 7KQ4 MZ3P", "sq7kq4mz3p", "7KQ4MZ3P",
                                   "7kq4-mz3p", " SQ-7KQ4 - MZ3P\t", "s q 7 k q 4 m z 3 p"])
def test_a_reference_as_typed_is_read_in_its_one_written_form(typed):
    assert rules.normal_reference(typed) == "SQ-7KQ4-MZ3P"


@pytest.mark.parametrize("typed", ["", None, "SQ-7KQ4-MZ3", "SQ-7KQ4-MZ3PX", "7KQ4", "SQ", "SQ-"])
def test_a_reference_of_the_wrong_length_is_nothing(typed):
    assert rules.normal_reference(typed) == ""


@given(st.text(max_size=30))
def test_normalising_a_reference_twice_changes_nothing(text):
    once = rules.normal_reference(text)
    assert rules.normal_reference(once) == once


@given(st.randoms(use_true_random=False))
def test_every_new_reference_round_trips_as_written_and_as_typed_loosely(rng):
    reference = rules.new_reference(rng)
    assert rules.normal_reference(reference) == reference
    assert rules.normal_reference(reference.lower().replace("-", " ")) == reference
    assert rules.normal_reference(reference.replace("-", "")) == reference


@given(st.text(alphabet=rules.REFERENCE_ALPHABET, min_size=8, max_size=8))
@example("SQ234567")  # a code that itself starts with S, Q (1 reference in 1,024)
def test_every_reference_typed_without_its_prefix_is_found(code):
    """What an applicant reads out over the phone is often just the eight characters after SQ-."""
    reference = f"SQ-{code[:4]}-{code[4:]}"
    assert rules.normal_reference(code) == reference
    assert rules.normal_reference(f"{code[:4]}-{code[4:]}".lower()) == reference


# --- phone numbers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "normal"), [
    ("13800138000", "13800138000"), ("138 0013 8000", "13800138000"), ("138-0013-8000", "13800138000"),
    ("+86 138 0013 8000", "13800138000"), ("+8613800138000", "13800138000"), ("19912345678", "19912345678"),
    ("0511-88886666", "051188886666"), ("(0511) 8888 6666", "051188886666"), ("010-12345678", "01012345678"),
    ("+86 0511 8888 6666", "051188886666"), ("025 1234567", "0251234567"),
])
def test_a_phone_number_without_spaces_dashes_or_the_country_code(typed, normal):
    assert rules.normal_phone(typed) == normal


@pytest.mark.parametrize("junk", ["", None, "12345", "12800138000", "1380013800", "138001380000", "abc13800138000",
                                  "138 0013 800O", "+1 212 555 0100", "5118888666", "0511-888", "110", "+86"])
def test_anything_else_is_no_phone_number(junk):
    assert rules.normal_phone(junk) == ""


# --- the challenge --------------------------------------------------------------------------------------------


def challenge(now=NOW, secret=SECRET, seed=3):
    made = rules.new_challenge(secret, now, random.Random(seed))
    a, b = (int(x) for x in made.question.split("+"))
    return made, a + b


def test_the_right_answer_passes_and_the_sum_is_small():
    for seed in range(50):
        made, answer = challenge(seed=seed)
        assert re.fullmatch(r"[2-9] \+ [2-9]", made.question)
        assert rules.challenge_passed(SECRET, made.token, str(answer), NOW)
        assert rules.challenge_passed(SECRET, made.token, answer, NOW + timedelta(minutes=29))
        assert rules.challenge_passed(SECRET, made.token, f" {answer} ", NOW)


def test_the_challenge_holds_for_thirty_minutes_and_no_longer():
    made, answer = challenge()
    assert rules.challenge_passed(SECRET, made.token, answer, NOW + timedelta(minutes=30))
    assert not rules.challenge_passed(SECRET, made.token, answer, NOW + timedelta(minutes=30, seconds=1))
    assert not rules.challenge_passed(SECRET, made.token, answer, NOW + timedelta(hours=5))
    assert not rules.challenge_passed(SECRET, made.token, answer, NOW - timedelta(minutes=1))  # issued in the future


def tampered(token: str) -> list[str]:
    a, b, issued, signature = token.split(".")
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    return [f"{int(a) + 1}.{b}.{issued}.{signature}",  # another sum under the same signature
            f"{a}.{b}.{int(issued) + 600}.{signature}",  # made younger
            f"{a}.{b}.{issued}.{flipped}",
            f"{a}.{b}.{issued}.{signature[:-1]}",
            f"{a}.{b}.{issued}",
            f"{a}.{b}.{issued}.{signature}.x",
            "", "not a token", "x.y.z.w"]


def test_a_wrong_answer_or_a_tampered_expired_or_foreign_token_fails():
    made, answer = challenge()
    assert not rules.challenge_passed(SECRET, made.token, answer + 1, NOW)
    assert not rules.challenge_passed(SECRET, made.token, answer - 1, NOW)
    for token in tampered(made.token):
        assert not rules.challenge_passed(SECRET, token, answer, NOW), token
        assert not rules.challenge_passed(SECRET, token, answer + 1, NOW), token
    other, other_answer = challenge(secret=b"another-secret")
    assert not rules.challenge_passed(SECRET, other.token, other_answer, NOW)
    assert rules.challenge_passed(b"another-secret", other.token, other_answer, NOW)
    old, old_answer = challenge(now=NOW - timedelta(minutes=31))
    assert not rules.challenge_passed(SECRET, old.token, old_answer, NOW)


@pytest.mark.parametrize("answer", ["", "seven", "7.0", "1e1", None, [], {}, "0x7", "--7"])
def test_a_non_numeric_answer_fails_without_an_error(answer):
    made, _ = challenge()
    assert rules.challenge_passed(SECRET, made.token, answer, NOW) is False


def test_a_token_that_is_not_text_fails_without_an_error():
    _, answer = challenge()
    assert rules.challenge_passed(SECRET, None, answer, NOW) is False
    assert rules.challenge_passed(SECRET, 12345, answer, NOW) is False


def test_the_flood_limit_counts_hashed_addresses_per_kind():
    key = rules.client_key(SECRET, "address", "203.0.113.9")
    assert len(key) == 64 and "203.0.113.9" not in key
    assert key == rules.client_key(SECRET, "address", "203.0.113.9")
    assert key != rules.client_key(SECRET, "phone", "203.0.113.9") != rules.client_key(b"x", "address", "203.0.113.9")


# --- discovery thresholds -------------------------------------------------------------------------------------


def test_every_rule_has_a_check_limits_for_its_thresholds_and_defaults_within_them():
    assert set(rules.RULE_BY_CODE) == set(rules.CHECKS) == {"lives_alone_missed_checks", "all_visits_missed",
                                                             "class_lapsing"}
    for rule in rules.RULES:
        merged, problems = rules.checked_params(rule.code, dict(rule.defaults))
        assert problems == {} and merged == rule.defaults


@pytest.mark.parametrize(("code", "params", "problem"), [
    ("class_lapsing", {"weeks": 4}, "weeks"),
    ("class_lapsing", {"min_age": 60}, "min_age"),  # a threshold of another rule
    ("class_lapsing", {"days": 0}, "days"),
    ("class_lapsing", {"days": 367}, "days"),
    ("class_lapsing", {"days": -5}, "days"),
    ("class_lapsing", {"days": True}, "days"),
    ("class_lapsing", {"days": "30"}, "days"),
    ("class_lapsing", {"days": 30.0}, "days"),
    ("class_lapsing", {"days": None}, "days"),
    ("lives_alone_missed_checks", {"min_age": 121}, "min_age"),
    ("lives_alone_missed_checks", {"in_a_row": 0}, "in_a_row"),
    ("lives_alone_missed_checks", {"in_a_row": False}, "in_a_row"),
    ("lives_alone_missed_checks", {"service_type": "ps03"}, "service_type"),
    ("lives_alone_missed_checks", {"service_type": "PS3"}, "service_type"),
    ("lives_alone_missed_checks", {"service_type": "PS033"}, "service_type"),
    ("lives_alone_missed_checks", {"service_type": 3}, "service_type"),
    ("lives_alone_missed_checks", {"service_type": "PS03\n"}, "service_type"),
    ("all_visits_missed", {"min_visits": 101}, "min_visits"),
    ("all_visits_missed", {"min_visits": 0}, "min_visits"),
])
def test_a_bad_threshold_is_a_problem_named_after_it(code, params, problem):
    merged, problems = rules.checked_params(code, params)
    assert set(problems) == {problem} and problems[problem]
    assert merged == rules.RULE_BY_CODE[code].defaults  # the bad value is not taken


def test_good_thresholds_are_merged_over_the_defaults_at_the_limits():
    merged, problems = rules.checked_params("lives_alone_missed_checks",
                                            {"min_age": 120, "in_a_row": 1, "service_type": "PS01"})
    assert problems == {} and merged == {"min_age": 120, "in_a_row": 1, "service_type": "PS01"}
    merged, problems = rules.checked_params("all_visits_missed", {"days": 1})
    assert problems == {} and merged == {"days": 1, "min_visits": 2}
    merged, problems = rules.checked_params("all_visits_missed", {"days": 366, "min_visits": 100})
    assert problems == {} and merged == {"days": 366, "min_visits": 100}
    assert rules.checked_params("class_lapsing", None) == ({"days": 30}, {})
    merged, problems = rules.checked_params("all_visits_missed", {"days": 14, "min_visits": 0, "x": 1})
    assert merged == {"days": 14, "min_visits": 2} and set(problems) == {"min_visits", "x"}


def test_the_defaults_are_not_changed_by_checking():
    rules.checked_params("class_lapsing", {"days": 90})
    assert rules.RULE_BY_CODE["class_lapsing"].defaults == {"days": 30}


@given(st.dictionaries(st.sampled_from(["days", "min_visits", "in_a_row", "min_age", "other"]),
                       st.one_of(st.integers(-1000, 1000), st.booleans(), st.text(max_size=5), st.none(),
                                 st.floats(allow_nan=False)), max_size=5))
def test_checked_thresholds_are_always_within_their_limits(params):
    merged, problems = rules.checked_params("all_visits_missed", params)
    assert set(merged) == {"days", "min_visits"}
    for name, value in merged.items():
        low, high = rules.PARAM_LIMITS[name]
        assert type(value) is int and low <= value <= high
    for name, value in params.items():  # each threshold given is either taken as it is or named as a problem
        assert name in problems or (type(value) is int and merged[name] == value)


def test_a_rule_in_words_says_its_thresholds():
    zh = rules.describe("lives_alone_missed_checks", {"min_age": 70, "in_a_row": 3, "service_type": "PS01"})
    assert "70" in zh and "3" in zh and "PS01" in zh and "独居" in zh
    en = rules.describe("lives_alone_missed_checks", {"in_a_row": 4}, "en")
    assert "aged 60 or over" in en and "last 4 welfare checks (PS03)" in en
    assert "7" in rules.describe("all_visits_missed", {}) and "2" in rules.describe("all_visits_missed", {})
    assert "at least 5 visits in the last 10 days" in rules.describe("all_visits_missed",
                                                                      {"days": 10, "min_visits": 5}, "en")
    assert "45天" in rules.describe("class_lapsing", {"days": 45})
    assert "within 45 days" in rules.describe("class_lapsing", {"days": 45}, "en")


# --- discovery checks -----------------------------------------------------------------------------------------

ALONE = rules.RULE_BY_CODE["lives_alone_missed_checks"].defaults
ALL_MISSED = rules.RULE_BY_CODE["all_visits_missed"].defaults
LAPSING = rules.RULE_BY_CODE["class_lapsing"].defaults


def person(visits=(), *, age=80, alone=True, until=None, rid=1):
    return PersonFacts(rid, age, alone, until, tuple(visits))


def days_ago(*statuses, code="PS03", last=1):
    """Visits on consecutive days, the last one `last` days before TODAY, oldest first."""
    n = len(statuses)
    return [(TODAY - timedelta(days=last + n - 1 - k), code, status) for k, status in enumerate(statuses)]


def test_living_alone_two_welfare_checks_missed_in_a_row_is_a_hit():
    assert rules.lives_alone_missed_checks(person(days_ago("completed", "missed", "missed")), TODAY, ALONE) \
        == "2 missed"
    assert rules.lives_alone_missed_checks(person(days_ago("missed", "missed"), age=60), TODAY, ALONE)  # 60 is enough


@pytest.mark.parametrize(("facts", "why"), [
    (person(days_ago("missed", "missed"), age=59), "too young"),
    (person(days_ago("missed", "missed"), alone=False), "not alone"),
    (person(days_ago("missed", "missed", "completed")), "the last one was done"),
    (person(days_ago("missed", "completed", "missed")), "only one in a row"),
    (person(days_ago("missed")), "only one check at all"),
    (person(), "no checks"),
    (person(days_ago("missed", "missed", code="PS01")), "another service"),
    (person(days_ago("missed", code="PS01") + days_ago("missed", last=0)), "today's check is not over yet"),
    (person(days_ago("missed", last=1) + days_ago("missed", last=0)), "today's check is not over yet"),
    (person(days_ago("missed", "planned")), "a planned visit is not a missed one"),
])
def test_near_misses_of_the_living_alone_rule(facts, why):
    assert rules.lives_alone_missed_checks(facts, TODAY, ALONE) is None, why


def test_cancelled_and_planned_checks_neither_count_nor_break_a_run_of_misses():
    visits = days_ago("completed", "missed", "cancelled", "missed", "planned")
    assert rules.lives_alone_missed_checks(person(visits), TODAY, ALONE) == "2 missed"


def test_the_living_alone_thresholds_move_the_hits():
    three = person(days_ago("completed", "missed", "missed", "missed"), age=65)
    assert rules.lives_alone_missed_checks(three, TODAY, {**ALONE, "in_a_row": 3}) == "3 missed"
    assert rules.lives_alone_missed_checks(three, TODAY, {**ALONE, "in_a_row": 4}) is None
    assert rules.lives_alone_missed_checks(three, TODAY, {**ALONE, "min_age": 65}) == "2 missed"
    assert rules.lives_alone_missed_checks(three, TODAY, {**ALONE, "min_age": 66}) is None
    companionship = person(days_ago("missed", "missed", code="PS01"))
    assert rules.lives_alone_missed_checks(companionship, TODAY, {**ALONE, "service_type": "PS01"}) == "2 missed"


def test_every_visit_of_the_week_missed_is_a_hit():
    assert rules.all_visits_missed(person(days_ago("missed", "missed", code="LC02")), TODAY, ALL_MISSED) \
        == "2 missed of 2"
    seven = days_ago(*["missed"] * 7, code="LC02")
    assert seven[0][0] == TODAY - timedelta(days=7)  # the window's first day counts
    assert rules.all_visits_missed(person(seven, alone=False), TODAY, ALL_MISSED) == "7 missed of 7"
    mixed = days_ago("missed", "missed", code="LC01") + days_ago("missed", code="PS03")
    assert rules.all_visits_missed(person(mixed), TODAY, ALL_MISSED) == "3 missed of 3"  # any service type


@pytest.mark.parametrize(("visits", "why"), [
    (days_ago("missed", code="LC02"), "one visit is fewer than two"),
    (days_ago("missed", "completed", "missed", code="LC02"), "one was done"),
    (days_ago("completed", *["missed"] * 6, code="LC02"), "done on the window's first day"),
    (days_ago("missed", "cancelled", code="LC02"), "a cancelled visit is not a missed one"),
    (days_ago("missed", "missed", code="LC02", last=7), "the older one is out of the window"),
    (days_ago("missed", "missed", code="LC02", last=8), "both out of the window"),
    (days_ago("missed", code="LC02") + days_ago("missed", last=0), "today's visit is not over yet"),
    ((), "no visits at all"),
])
def test_near_misses_of_the_all_visits_missed_rule(visits, why):
    assert rules.all_visits_missed(person(visits), TODAY, ALL_MISSED) is None, why


def test_the_all_visits_missed_thresholds_move_the_hits():
    visits = days_ago("missed", "missed", "missed", code="LC02", last=2)  # 4, 3 and 2 days ago
    assert rules.all_visits_missed(person(visits), TODAY, {"days": 4, "min_visits": 3}) == "3 missed of 3"
    assert rules.all_visits_missed(person(visits), TODAY, {"days": 3, "min_visits": 3}) is None
    assert rules.all_visits_missed(person(visits), TODAY, {"days": 3, "min_visits": 2}) == "2 missed of 2"
    assert rules.all_visits_missed(person(visits), TODAY, {"days": 7, "min_visits": 4}) is None


@pytest.mark.parametrize(("until", "hit"), [
    (TODAY + timedelta(days=30), True), (TODAY + timedelta(days=31), False), (TODAY, True),
    (TODAY - timedelta(days=100), True), (TODAY + timedelta(days=1), True), (None, False),
])
def test_a_class_lapsing_within_thirty_days_or_lapsed_is_a_hit(until, hit):
    why = rules.class_lapsing(person(until=until), TODAY, LAPSING)
    assert (why is not None) is hit
    if hit:
        assert why == f"valid until {until.isoformat()}"


def test_the_lapsing_threshold_moves_the_hits():
    facts = person(until=TODAY + timedelta(days=45))
    assert rules.class_lapsing(facts, TODAY, {"days": 45})
    assert rules.class_lapsing(facts, TODAY, {"days": 44}) is None


def test_discover_runs_the_enabled_rules_over_everyone():
    people = [
        person(days_ago("missed", "missed"), rid=1),  # alone and missed: both visit rules
        person(days_ago("missed", "missed", code="LC02"), alone=False, rid=2),
        person(until=TODAY + timedelta(days=10), rid=3),
        person(days_ago("completed", "missed"), until=TODAY + timedelta(days=90), rid=4),  # nothing
    ]
    everything = {"lives_alone_missed_checks": ALONE, "all_visits_missed": ALL_MISSED, "class_lapsing": LAPSING}
    hits = rules.discover(people, TODAY, everything)
    assert sorted(hits) == sorted([
        ("lives_alone_missed_checks", 1, "2 missed"), ("all_visits_missed", 1, "2 missed of 2"),
        ("all_visits_missed", 2, "2 missed of 2"), ("class_lapsing", 3, f"valid until {TODAY + timedelta(days=10)}"),
    ])
    assert rules.discover(people, TODAY, {"class_lapsing": LAPSING}) == [
        ("class_lapsing", 3, f"valid until {TODAY + timedelta(days=10)}")]
    assert rules.discover(people, TODAY, {"class_lapsing": {"days": 100}}) == [
        ("class_lapsing", 3, f"valid until {TODAY + timedelta(days=10)}"),
        ("class_lapsing", 4, f"valid until {TODAY + timedelta(days=90)}")]
    assert rules.discover(people, TODAY, {}) == []
    assert rules.discover([], TODAY, everything) == []


statuses = st.sampled_from(["completed", "missed", "cancelled", "planned"])


@given(st.lists(st.tuples(st.integers(0, 40), st.sampled_from(["PS03", "LC02"]), statuses), max_size=20),
       st.integers(0, 100), st.booleans())
def test_a_rule_hit_always_rests_on_missed_visits_before_today(raw, age, alone):
    visits = sorted((TODAY - timedelta(days=ago), code, status) for ago, code, status in raw)
    facts = person(visits, age=age, alone=alone)
    if rules.lives_alone_missed_checks(facts, TODAY, ALONE):
        checks = [s for d, c, s in visits if c == "PS03" and d < TODAY and s in ("completed", "missed")]
        assert alone and age >= 60 and checks[-2:] == ["missed", "missed"]
    if why := rules.all_visits_missed(facts, TODAY, ALL_MISSED):
        recent = [s for d, _, s in visits if TODAY - timedelta(days=7) <= d < TODAY]
        assert "completed" not in recent and recent.count("missed") >= 2
        assert why == f"{recent.count('missed')} missed of {recent.count('missed')}"
