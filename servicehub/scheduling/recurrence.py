"""Recurring visit plans as RFC 5545 RRULEs, and the days they fall on. Pure module.

A need says "3 a week, preferably Mon/Wed/Fri" or "4 a month"; its series stores that as an RRULE
(`FREQ=WEEKLY;BYDAY=MO,WE,FR`). One-off exceptions (a holiday, a recipient in hospital) are date
ranges removed from the occurrences, never edits of the rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from dateutil.rrule import rrulestr

DAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # ISO weekday 1..7
WORKING_DAYS = (1, 2, 3, 4, 5)


def spread_days(count: int, preferred: Iterable[int] = ()) -> list[int]:
    """`count` ISO weekdays: the preferred ones (evenly picked if there are more), then days far from them."""
    preferred = sorted({int(d) for d in preferred if 1 <= int(d) <= 7})
    count = max(1, min(count, 7))
    if len(preferred) >= count:
        if count == 1:
            return preferred[:1]
        return sorted({preferred[round(k * (len(preferred) - 1) / (count - 1))] for k in range(count)})
    chosen = list(preferred) or [1]
    pool = [d for d in (WORKING_DAYS if count <= 5 else range(1, 8)) if d not in chosen]
    if len(chosen) + len(pool) < count:
        pool += [d for d in range(1, 8) if d not in chosen and d not in pool]
    while len(chosen) < count:
        best = max(pool, key=lambda d: (min(abs(d - c) for c in chosen), -d))
        chosen.append(best)
        pool.remove(best)
    return sorted(chosen)


def need_rrule(quantity: int, period: str, preferred_days: Iterable[int] = ()) -> str:
    """The RRULE of a need: weekly on spread days, or a monthly count spread over the weeks of the month."""
    if period == "week":
        days = spread_days(quantity, preferred_days)
        return "FREQ=WEEKLY;BYDAY=" + ",".join(DAY_CODES[d - 1] for d in days)
    if period != "month":
        raise ValueError(f"unknown period {period!r}")
    quantity = max(1, min(quantity, 28))
    if quantity >= 4:
        # Several a month: weekly on as many days as it takes (4–5 weeks a month), then capped by BYSETPOS.
        per_week = -(-quantity // 4)
        days = spread_days(per_week, preferred_days)
        positions = ",".join(str(k) for k in range(1, quantity + 1))
        return "FREQ=MONTHLY;BYDAY=" + ",".join(DAY_CODES[d - 1] for d in days) + f";BYSETPOS={positions}"
    # 1–3 a month: on the n-th preferred (or first working) weekday of the month, spread over the weeks.
    day = DAY_CODES[spread_days(1, preferred_days)[0] - 1]
    weeks = {1: (2,), 2: (1, 3), 3: (1, 2, 4)}[quantity]
    return "FREQ=MONTHLY;BYDAY=" + ",".join(f"+{w}{day}" for w in weeks)


def occurrences(rule: str, start: date, first: date, last: date, until: date | None = None,
                exceptions: Iterable[tuple[date, date]] = ()) -> list[date]:
    """The days in [first, last] on which the rule (counted from `start`) falls, minus the exception ranges."""
    begin, end = max(start, first), last if until is None else min(last, until)
    if begin > end:
        return []
    parsed = rrulestr(rule, dtstart=datetime.combine(start, datetime.min.time()))
    days = [d.date() for d in parsed.between(datetime.combine(begin, datetime.min.time()),
                                                 datetime.combine(end, datetime.min.time()), inc=True)]
    ranges = list(exceptions)
    return [d for d in days if not any(a <= d <= b for a, b in ranges)]


def horizon(today: date, days: int) -> tuple[date, date]:
    """The rolling planning horizon: today and the `days - 1` days after it."""
    return today, today + timedelta(days=max(1, days) - 1)
