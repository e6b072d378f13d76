"""The district's clock: its time zone, local days as UTC intervals."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app

from servicehub.database import utcnow
from servicehub.errors import N_, ValidationFailed


def district_tz() -> ZoneInfo:
    """The configured district time zone (SERVICEHUB_TIMEZONE, Asia/Shanghai by default)."""
    return ZoneInfo(current_app.config["SERVICEHUB_TIMEZONE"])


def district_now() -> datetime:
    """The district's current time (aware, in its zone): the one clock every rule about "now" reads (see
    `servicehub.database.utcnow` for how tests and the demo set it)."""
    return utcnow().astimezone(district_tz())


def district_today() -> date:
    """Today's date in the district."""
    return district_now().date()


def local_midnight(day: date) -> datetime:
    """The start of a local calendar day, as an aware UTC datetime."""
    return datetime.combine(day, time(0), tzinfo=district_tz()).astimezone(UTC)


def local_days(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """[start of `first`, end of `last`) as UTC datetimes; either end may be open (None)."""
    return (
        local_midnight(first) if first else None,
        local_midnight(last + timedelta(days=1)) if last else None,
    )


def local_dates(tz: ZoneInfo):
    """A function giving the local calendar date of a moment (naive means UTC), for converting many: the
    zone's offset is looked up once per quarter hour of UTC (every zone changes its offset on a quarter hour),
    not once per moment."""
    offsets: dict[tuple, timedelta] = {}

    def local_date(moment: datetime) -> date:
        if moment.tzinfo is not None and moment.utcoffset():
            moment = moment.astimezone(UTC)
        key = (moment.year, moment.month, moment.day, moment.hour, moment.minute // 15)
        offset = offsets.get(key)
        if offset is None:
            utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
            offset = offsets[key] = utc.astimezone(tz).utcoffset()
        return (moment + offset).date()

    return local_date


def month_days(month: str) -> tuple[date, date]:
    """'2026-11' -> its first and last day; 422 naming `month` when malformed."""
    try:
        year, number = (int(part) for part in month.split("-"))
        first = date(year, number, 1)
    except (AttributeError, TypeError, ValueError):
        raise ValidationFailed(N_("A month is written YYYY-MM."), {"month": ["Not a month (YYYY-MM)."]}) from None
    return first, first.replace(day=calendar.monthrange(year, number)[1])  # 9999-12 too, which has no next month
