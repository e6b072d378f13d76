"""Web forms of the report pages, and the words pages use for evaluation's coded values.

The forms check presence and format; the evaluation services check the period (in order, at most five
years), the grouping and who may see which organisation or town, and refuse with a ValidationFailed or
PermissionDenied whose field errors the views put back onto the form.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.fields import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional, Regexp

from servicehub.evaluation import kpis
from servicehub.web.format import choices, define_labels
from servicehub.web.forms import PageForm, int_or_none

# --- the words for coded values -------------------------------------------------------------

LABELS = define_labels(
    {
        # What a report's groups can be (kpis.DIMENSIONS; the recipient is left out of the pages on purpose).
        "report_dimension": {
            "organisation": _l("Organisation"),
            "contract": _l("Contract"),
            "service_type": _l("Service"),
            "category": _l("Service category"),
            "town": _l("Town"),
            "recipient_class": _l("Assistance class"),
            "worker": _l("Worker"),
        },
        # The period granularities (kpis.PERIODS).
        "report_period": {
            "day": _l("Day"),
            "week": _l("Week"),
            "month": _l("Month"),
            "quarter": _l("Quarter"),
            "year": _l("Year"),
        },
        # How a visit of a report ended (kpis.OUTCOMES).
        "visit_outcome": {
            kpis.DELIVERED: _l("Delivered"),
            kpis.MISSED: _l("Missed"),
            kpis.CANCELLED: _l("Cancelled"),
        },
        # The groups of figures (kpis.Definition.group).
        "figure_group": {
            "quantity": _l("Quantity"),
            "quality": _l("Quality"),
            "timeliness": _l("Timeliness"),
            "cost": _l("Cost"),
        },
        # The components of an organisation's composite score (servicehub.evaluation.score).
        "score_component": {
            "on_time": _l("On time"),
            "not_missed": _l("Not missed"),
            "satisfaction": _l("Satisfaction"),
            "continuity": _l("Continuity of carer"),
            "completion": _l("Contract completion"),
            "submitted": _l("Records submitted within 24 h"),
            "no_exceptions": _l("Without exceptions"),
        },
        # What a record of a report is marked with.
        "record_flag": {
            "exception": _l("Flagged"),
            "manual": _l("Manual or edited"),
            "corrected": _l("Corrected"),
        },
        # What changed of a frozen report's record since it was issued.
        "record_change": {
            "added": _l("Added since"),
            "removed": _l("No longer counted"),
            "changed": _l("Changed"),
        },
        # The figures of a settlement that a comparison with the frozen one lists (servicehub.evaluation.services
        # .settlement_changes).
        "settlement_figure": {
            "verified": _l("Verified visits"),
            "units": _l("Billable units"),
            "amount_fen": _l("Amount owed"),
            "unverified": _l("Visits not verified"),
            "unverified_fen": _l("Amount waiting for approval"),
            "total_fen": _l("Total owed"),
        },
        # Where an exception of a visit stands (servicehub.visits.models.ExceptionStatus), as a settlement shows it.
        "settlement_exception_status": {
            "open": _l("to explain"),
            "resolved": _l("to decide"),
            "rejected": _l("rejected"),
            "approved": _l("approved"),
            "waived": _l("waived"),
            "cleared": _l("cleared"),
        },
    }
)

FORMATS = ("csv", "xlsx", "pdf")
FORMAT_NAMES = {"csv": "CSV", "xlsx": "Excel", "pdf": "PDF"}


class GetForm(PageForm):
    """A GET form of a report page (no CSRF token: it changes nothing)."""

    class Meta:
        csrf = False


class Period(GetForm):
    """A report's period: its first and last day."""

    first = DateField(_l("From"), name="from", validators=[InputRequired(message=_l("Give the first day."))])
    last = DateField(_l("To"), name="to", validators=[InputRequired(message=_l("Give the last day."))])

    FILTERS: tuple[str, ...] = ()

    def filters(self) -> dict:
        """The service's filter arguments (None: all)."""
        return {name: self[name].data or None for name in self.FILTERS}


class ReportForm(Period):
    """A KPI report: the period, what to group by (a dimension and a period granularity) and the filters
    (their choices are set by the view, scoped to the caller: a value not offered is an error)."""

    organisation_id = SelectField(_l("Organisation"), coerce=int_or_none, default="")
    contract_id = SelectField(_l("Contract"), coerce=int_or_none, default="")
    service_type = SelectField(_l("Service"), default="")
    town_id = SelectField(_l("Town"), coerce=int_or_none, default="")
    recipient_class = SelectField(_l("Assistance class"), default="")
    group_by = SelectField(_l("Group by"), choices=choices("report_dimension", _l("Nothing (total only)")),
                           default="organisation")
    period = SelectField(_l("And by period"), choices=choices("report_period", _l("Not by period")), default="")

    def grouping(self) -> tuple[str, ...]:
        """The service's group_by: the dimension, then the period granularity."""
        return tuple(name for name in (self.group_by.data, self.period.data) if name)

    FILTERS = ("organisation_id", "contract_id", "service_type", "town_id", "recipient_class")

    def query(self) -> dict:
        """The service's arguments."""
        return {"first": self.first.data, "last": self.last.data, "group_by": self.grouping(), **self.filters()}


def _id():
    return IntegerField(validators=[Optional(), NumberRange(min=1)])


def _code(pattern: str):
    return StringField(validators=[Optional(), Regexp(pattern)])


class RecordsForm(Period):
    """The records behind one group of a report: the report's period and filters, the group's key as filters
    (any dimension, so a category or a worker too) and its period bucket."""

    organisation_id = _id()
    contract_id = _id()
    service_type = _code(r"^[A-Z]{2}\d{2}$")
    category = _code(r"^[A-Z]{2}$")
    town_id = _id()
    recipient_class = StringField(validators=[Optional(), Length(max=32)])
    worker_id = _id()
    granularity = SelectField(choices=[SelectChoice("", ""), *(SelectChoice(p, p) for p in kpis.PERIODS)], default="")
    bucket = StringField(validators=[Optional(), Length(min=4, max=10)])
    unassigned = SelectMultipleField(choices=[SelectChoice(name, name) for name in ("contract", "worker")])

    FILTERS = ("organisation_id", "contract_id", "service_type", "category", "town_id", "recipient_class",
               "worker_id")

    def key(self) -> dict:
        """The group's period part and what it has none of, as the service takes it ({}: neither)."""
        key = dict.fromkeys(self.unassigned.data or ())
        if self.granularity.data and self.bucket.data:
            key[self.granularity.data] = self.bucket.data
        return key


class ScorecardForm(GetForm):
    """Whose scorecard (managers, auditors and admins choose; a provider sees its own)."""

    organisation_id = SelectField(_l("Organisation"), coerce=int_or_none, default="", validate_choice=False)


class FrozenFilterForm(GetForm):
    """Filters of the frozen reports list; a value not offered is ignored."""

    contract_id = SelectField(_l("Contract"), coerce=int_or_none, default="", validate_choice=False)


MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"


class FreezeForm(PageForm):
    """Freeze a contract's month by hand (the monthly close does it on the 1st). While exceptions of the month are
    undecided the service refuses unless `accept_open_exceptions` is ticked; the box is shown once the page knows
    how many there are (`undecided`)."""

    contract_id = SelectField(_l("Contract"), coerce=int_or_none,
                              validators=[InputRequired(message=_l("Choose a contract."))])
    month = StringField(_l("Month"), validators=[
        InputRequired(message=_l("Give the month.")),
        Regexp(MONTH, message=_l("Write the month as YYYY-MM.")),
    ])
    accept_open_exceptions = BooleanField(_l("Freeze with the undecided exceptions open"))
    back = HiddenField()  # where to go once frozen (a page of this site), else the frozen report

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.undecided: int | None = None  # exceptions of the chosen month not decided yet, once known


class SettlementForm(GetForm):
    """Whose settlement of which month (the contracts offered are the caller's, set by the view)."""

    contract_id = SelectField(_l("Contract"), coerce=int_or_none, default="")
    month = StringField(_l("Month"), validators=[
        InputRequired(message=_l("Give the month.")),
        Regexp(MONTH, message=_l("Write the month as YYYY-MM.")),
    ])
