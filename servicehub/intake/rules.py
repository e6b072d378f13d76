"""What an application must be and when it is due; the challenge of the public form; the rules of active
discovery. Pure module: plain data in, plain data out."""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read out over the phone
MOBILE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE = re.compile(r"^0\d{2,3}\d{7,8}$")
CHALLENGE_MAX_AGE = timedelta(minutes=30)


# --- applications -------------------------------------------------------------------------------------------


def new_reference(rng: random.Random | None = None) -> str:
    """A reference the applicant can read out: SQ-XXXX-XXXX (32^8 ≈ 10^12 values, not guessable in practice)."""
    rng = rng or random.SystemRandom()
    chars = "".join(rng.choice(REFERENCE_ALPHABET) for _ in range(8))
    return f"SQ-{chars[:4]}-{chars[4:]}"


def normal_reference(text: str) -> str:
    """A reference as typed (lower case, spaces, without the dashes) in its one written form."""
    compact = re.sub(r"[\s\-]", "", text or "").upper()
    if len(compact) == 10 and compact.startswith("SQ"):
        compact = compact[2:]
    return f"SQ-{compact[:4]}-{compact[4:]}" if len(compact) == 8 else ""


def normal_phone(text: str) -> str:
    """A phone number without spaces, dashes or the +86 prefix ('' when it is not a Chinese mobile or
    landline number)."""
    digits = re.sub(r"[\s\-()]", "", text or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    return digits if MOBILE.match(digits) or LANDLINE.match(digits) else ""


@dataclass(frozen=True)
class WorkingCalendar:
    """Which days are working days: Monday to Friday, but not the days off (holidays and the days that go with
    them), and the weekend days worked in exchange (调休) too."""

    days_off: frozenset[date] = frozenset()
    worked_weekend_days: frozenset[date] = frozenset()

    def is_working(self, day: date) -> bool:
        """Whether offices work on this day."""
        if day in self.days_off:
            return False
        return day.weekday() < 5 or day in self.worked_weekend_days


WEEK = WorkingCalendar()  # Monday to Friday, no holidays known


def due_at(submitted: datetime, emergency: bool, emergency_hours: float, working_days: int,
           calendar: WorkingCalendar = WEEK) -> datetime:
    """When the first contact is due: `emergency_hours` after submission for an emergency, else `working_days`
    working days (by `calendar`) later at the same time of day. `submitted` is local time."""
    if emergency:
        return submitted + timedelta(hours=emergency_hours)
    moment, left = submitted, working_days
    while left > 0:
        moment += timedelta(days=1)
        if calendar.is_working(moment.date()):
            left -= 1
    return moment


def is_overdue(due: datetime, first_contact: datetime | None, now: datetime) -> bool:
    """Nobody has been in touch and the deadline has passed."""
    return first_contact is None and now > due


# --- the public form's challenge ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """A sum to work out, and the signed token that lets the server check the answer without keeping state."""

    question: str
    token: str


def new_challenge(secret: bytes, now: datetime, rng: random.Random | None = None) -> Challenge:
    """A small sum (2–9 plus 2–9) and its token: the two numbers, when it was issued, and an HMAC of both."""
    rng = rng or random.SystemRandom()
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    issued = int(now.timestamp())
    return Challenge(f"{a} + {b}", f"{a}.{b}.{issued}.{_sign(secret, a, b, issued)}")


def challenge_passed(secret: bytes, token: str, answer, now: datetime) -> bool:
    """Whether `answer` is the token's sum, the token is ours and it is at most 30 minutes old."""
    try:
        a, b, issued, signature = token.split(".")
        a, b, issued = int(a), int(b), int(issued)
        given = int(str(answer).strip())
    except (AttributeError, ValueError):
        return False
    fresh = 0 <= now.timestamp() - issued <= CHALLENGE_MAX_AGE.total_seconds()
    return fresh and hmac.compare_digest(signature, _sign(secret, a, b, issued)) and given == a + b


def _sign(secret: bytes, a: int, b: int, issued: int) -> str:
    return hmac.new(secret, f"challenge:{a}:{b}:{issued}".encode(), hashlib.sha256).hexdigest()[:32]


def client_key(secret: bytes, kind: str, value: str) -> str:
    """An address or phone number as the flood limit counts it: an HMAC, so the table holds no raw addresses."""
    return hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


# --- active discovery ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A discovery rule: what it is called, what it looks for, and its default thresholds."""

    code: str
    name_zh: str
    name_en: str
    text_zh: str
    text_en: str
    defaults: dict


RULES: tuple[Rule, ...] = (
    Rule("lives_alone_missed_checks", "独居老人连续未探访成功", "Older person living alone: welfare checks missed",
         "独居且年满{min_age}岁的对象，最近{in_a_row}次探访关怀（{service_type}）均未完成。",
         "A recipient living alone aged {min_age} or over whose last {in_a_row} welfare checks ({service_type}) "
         "were all missed.",
         {"min_age": 60, "in_a_row": 2, "service_type": "PS03"}),
    Rule("all_visits_missed", "一周内服务全部未完成", "Every visit missed for a week",
         "最近{days}天内至少有{min_visits}次上门服务且全部未完成的对象。",
         "A recipient with at least {min_visits} visits in the last {days} days, every one of them missed.",
         {"days": 7, "min_visits": 2}),
    Rule("class_lapsing", "救助资格即将到期", "Assistance class lapses soon",
         "救助类别有效期在{days}天内到期的对象（需复核，避免救助中断）。",
         "A recipient whose assistance class lapses within {days} days (to be reviewed, so that help does not "
         "stop).",
         {"days": 30}),
)
RULE_BY_CODE = {rule.code: rule for rule in RULES}
# What each threshold must be: (lowest, highest) for numbers, or a pattern for codes.
PARAM_LIMITS = {"min_age": (0, 120), "in_a_row": (1, 20), "days": (1, 366), "min_visits": (1, 100),
                "service_type": re.compile(r"^[A-Z]{2}\d{2}$")}


def checked_params(code: str, params: dict) -> tuple[dict, dict[str, str]]:
    """A rule's thresholds merged over its defaults, and the problems with them by name (unknown names,
    numbers out of range, malformed codes)."""
    rule = RULE_BY_CODE[code]
    merged, problems = dict(rule.defaults), {}
    for name, value in (params or {}).items():
        if name not in rule.defaults:
            problems[name] = "Unknown threshold."
            continue
        limit = PARAM_LIMITS[name]
        if isinstance(limit, tuple):
            if isinstance(value, bool) or not isinstance(value, int) or not limit[0] <= value <= limit[1]:
                problems[name] = f"A whole number from {limit[0]} to {limit[1]}."
                continue
        elif not isinstance(value, str) or not limit.fullmatch(value):
            problems[name] = "A service type code like PS03."
            continue
        merged[name] = value
    return merged, problems


def describe(code: str, params: dict, language: str = "zh") -> str:
    """The rule in words, with its thresholds filled in."""
    rule = RULE_BY_CODE[code]
    return (rule.text_zh if language == "zh" else rule.text_en).format(**{**rule.defaults, **params})


@dataclass(frozen=True)
class PersonFacts:
    """What the rules look at for one active recipient: age, living alone, class validity, and their recent
    visits (service date, service type code, status), oldest first."""

    recipient_id: int
    age: int
    lives_alone: bool
    class_valid_until: date | None
    visits: Sequence[tuple[date, str, str]] = field(default_factory=tuple)


def lives_alone_missed_checks(person: PersonFacts, today: date, params: dict) -> str | None:
    """Hit: living alone, old enough, and the last `in_a_row` welfare checks all missed."""
    if not person.lives_alone or person.age < params["min_age"]:
        return None
    checks = [status for day, code, status in person.visits
              if code == params["service_type"] and day < today and status in ("completed", "missed")]
    last = checks[-params["in_a_row"]:]
    if len(last) == params["in_a_row"] and all(status == "missed" for status in last):
        return f"{params['in_a_row']} missed"
    return None


def all_visits_missed(person: PersonFacts, today: date, params: dict) -> str | None:
    """Hit: at least `min_visits` visits over the last `days` days, and every one missed."""
    since = today - timedelta(days=params["days"])
    done = [status for day, _code, status in person.visits
            if since <= day < today and status in ("completed", "missed")]
    if len(done) >= params["min_visits"] and all(status == "missed" for status in done):
        return f"{len(done)} missed of {len(done)}"
    return None


def class_lapsing(person: PersonFacts, today: date, params: dict) -> str | None:
    """Hit: the assistance class lapses within `days` days (or has lapsed)."""
    until = person.class_valid_until
    if until is not None and until <= today + timedelta(days=params["days"]):
        return f"valid until {until.isoformat()}"
    return None


CHECKS = {"lives_alone_missed_checks": lives_alone_missed_checks, "all_visits_missed": all_visits_missed,
          "class_lapsing": class_lapsing}


def discover(people: Sequence[PersonFacts], today: date, enabled: dict[str, dict]) -> list[tuple[str, int, str]]:
    """Every (rule code, recipient id, why) that the enabled rules (code -> thresholds) raise today."""
    hits = []
    for code, params in enabled.items():
        check = CHECKS[code]
        for person in people:
            why = check(person, today, params)
            if why is not None:
                hits.append((code, person.recipient_id, why))
    return hits
