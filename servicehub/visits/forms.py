"""Web forms of the alert inbox, and the words pages use for the kinds of alert.

The forms check presence and format; the visits services decide who may see and acknowledge which
alert and refuse with a NotFound, Conflict, ValidationFailed or PermissionDenied that the views show
on the page.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length

from servicehub.visits.models import AlertKind
from servicehub.web.format import choices, define_labels
from servicehub.web.forms import FilterForm, PageForm

NOTE_MAX = 2000  # as the API's acknowledge schema

# --- the words for coded values -------------------------------------------------------------

LABELS = define_labels(
    {
        "alert_kind": {
            AlertKind.LATE: _l("Visit not started"),
            AlertKind.MISSED: _l("Visit missed"),
            AlertKind.MISSED_STREAK: _l("Three missed in a row"),
            AlertKind.LINE_80: _l("Contract line four-fifths delivered"),
            AlertKind.LINE_100: _l("Contract line fully delivered"),
            AlertKind.BUDGET_80: _l("Budget four-fifths used"),
            AlertKind.BUDGET_100: _l("Budget used up"),
            AlertKind.CONTRACT_ENDING: _l("Contract ending soon"),
            AlertKind.QUALIFICATION_EXPIRING: _l("Certificate expiring"),
            AlertKind.APPLICATION_OVERDUE: _l("Application not answered in time"),
            AlertKind.DOCUMENTS_DUE: _l("Documents still missing"),
        },
        # Which alerts the inbox lists.
        "alert_state": {
            "open": _l("Open"),
            "all": _l("All, with acknowledged ones"),
        },
    }
)


# --- filters --------------------------------------------------------------------------------


class AlertFilterForm(FilterForm):
    """Filters of the alert inbox: open ones (the default) or all, and one kind; a value not offered is ignored."""

    show = SelectField(_l("Show"), choices=choices("alert_state"), default="open")
    kind = SelectField(_l("Kind"), choices=choices("alert_kind", _l("Any")), default="")

    def filters(self) -> dict:
        """The service's list arguments."""
        return {"open_only": self.value("show") != "all", "kind": self.value("kind")}


# --- acknowledging --------------------------------------------------------------------------


class AcknowledgeForm(PageForm):
    """Acknowledge an alert: a note on what was done (required), and the page to go back to."""

    next = HiddenField()
    note = TextAreaField(
        _l("What was done"),
        validators=[DataRequired(message=_l("Say what was done.")), Length(max=NOTE_MAX)],
    )
