"""How every domain's pages show values: the words for coded values, money, quantities, shares, lists.

Each domain defines the words for its coded values once (`define_labels`, in its forms module); the
helpers are template globals (`register_format`), so every template and imported macro can use them.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from flask_babel import lazy_gettext as _l
from wtforms.fields import SelectChoice

from servicehub.i18n import current_language, localized
from servicehub.timeutil import district_tz

# kind -> {code: lazy label}; filled by the domains' forms modules through define_labels.
LABELS: dict[str, dict[str, object]] = {}

WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # ISO weekday n is WEEKDAY_KEYS[n - 1]
WEEKDAYS = {
    "mon": _l("Mon"),
    "tue": _l("Tue"),
    "wed": _l("Wed"),
    "thu": _l("Thu"),
    "fri": _l("Fri"),
    "sat": _l("Sat"),
    "sun": _l("Sun"),
}


def define_labels(kinds: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    """Add the words for some kinds of coded values ({kind: {code: label}}); returns them."""
    LABELS.update(kinds)
    return kinds


def label(kind: str, value) -> str:
    """The page-language word for a coded value (the code itself if there is none)."""
    if value is None:
        return ""
    return str(LABELS.get(kind, {}).get(value, value))


def choices(kind: str, blank: object | None = None) -> list[SelectChoice]:
    """Select options for the coded values of `kind`, optionally after a blank 'any' option."""
    options = [SelectChoice(str(value), text) for value, text in LABELS[kind].items()]
    return ([SelectChoice("", blank)] if blank is not None else []) + options


def weekday_label(day: int | str) -> str:
    """'周一' for 1 or 'mon'."""
    key = WEEKDAY_KEYS[day - 1] if isinstance(day, int) else day
    return str(WEEKDAYS.get(key, key))


def yuan(fen: int | None) -> str:
    """Integer fen as '¥1,234.56'."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def units(quantity: float | None) -> str:
    """A quantity of service units with at most two decimals and no trailing zeros: '1,234.5'."""
    if quantity is None:
        return "—"
    text = f"{quantity:,.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def percent(share: float | None) -> str:
    """A share in [0, 1] as a whole percentage: '87%'."""
    return "—" if share is None else f"{round(share * 100):d}%"


def listing(items, how=None) -> str:
    """Items as one phrase ('周一、周三' / 'Mon, Wed'), each named by `how`: function, dict or name base."""
    if callable(how):
        words = [how(item) for item in items]
    elif isinstance(how, dict):
        words = [how.get(item, item) for item in items]
    elif how:
        words = [localized(item, how) for item in items]
    else:
        words = list(items)
    return ("、" if current_language() == "zh" else ", ").join(str(w) for w in words)


def hhmm(minutes: int | None) -> str:
    """Minutes from midnight as a time of day: 545 -> '09:05' (past midnight: '24:10')."""
    if minutes is None:
        return "—"
    hours, mins = divmod(int(minutes), 60)
    return f"{hours:02d}:{mins:02d}"


def local_time(moment: datetime | None) -> str:
    """An aware datetime as the district's local time of day: '09:05'."""
    return "—" if moment is None else moment.astimezone(district_tz()).strftime("%H:%M")


def last_page(total: int, page_size: int) -> int:
    """The number of the last page of a list of `total` rows (at least 1)."""
    return max(1, -(-total // page_size))


def register_format(app: Flask) -> None:
    """Make the helpers template globals (also inside macros imported without context)."""
    for helper in (label, weekday_label, yuan, units, percent, listing, hhmm, local_time):
        app.add_template_global(helper)
