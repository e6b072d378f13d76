"""The district's clock helpers that need no app: converting many UTC moments to local dates."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from servicehub.timeutil import local_dates

# The district's zone, and zones whose offsets change (on the hour, the half hour, by half an hour).
ZONES = ["Asia/Shanghai", "Europe/Berlin", "America/St_Johns", "Australia/Lord_Howe", "Pacific/Chatham"]
MOMENTS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31))


@settings(max_examples=400)
@given(zone=st.sampled_from(ZONES), moments=st.lists(MOMENTS, min_size=1, max_size=30))
def test_local_dates_agree_with_astimezone_for_every_moment(zone, moments):
    tz = ZoneInfo(zone)
    local_date = local_dates(tz)  # one converter for all: its cache must never give another moment's offset
    for moment in moments:
        assert local_date(moment) == moment.replace(tzinfo=UTC).astimezone(tz).date()
        assert local_date(moment.replace(tzinfo=UTC)) == moment.replace(tzinfo=UTC).astimezone(tz).date()
        # as a driver may give it: aware, in the connection's zone
        elsewhere = moment.replace(tzinfo=UTC).astimezone(ZoneInfo("America/Los_Angeles"))
        assert local_date(elsewhere) == moment.replace(tzinfo=UTC).astimezone(tz).date()


def test_the_minutes_around_an_offset_change_get_their_own_dates():
    tz = ZoneInfo("America/St_Johns")  # -2:30 in summer, -3:30 in winter: the change at 04:30 UTC, 1 Nov 2026
    local_date = local_dates(tz)
    start = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
    for minute in range(0, 180, 7):
        moment = start + timedelta(minutes=minute)
        assert local_date(moment) == moment.astimezone(tz).date()
