"""The district's clock: its time zone, local days as UTC intervals."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app


def district_tz() -> ZoneInfo:
    """The configured district time zone (SERVICEHUB_TIMEZONE, Asia/Shanghai by default)."""
    return ZoneInfo(current_app.config["SERVICEHUB_TIMEZONE"])


def district_today() -> date:
    """Today's date in the district."""
    return datetime.now(district_tz()).date()


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
