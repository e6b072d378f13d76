"""Web forms of the alert inbox, the exception queue and the confirmation cards, and the words pages use for the
kinds of alert, the exception codes, their statuses and the providers' reasons.

The forms check presence and format; the visits services decide who may see, acknowledge, explain and decide
what, and refuse with a NotFound, Conflict, ValidationFailed or PermissionDenied that the views show on the page.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length, Optional, Regexp

from servicehub.visits.exceptions import Code
from servicehub.visits.models import AlertKind, ExceptionStatus, ResolutionReason
from servicehub.web.format import choices, define_labels
from servicehub.web.forms import FilterForm, PageForm, int_or_none

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
            AlertKind.CODE_FAILED: _l("Confirmation codes failed"),
            AlertKind.CARD_REISSUED: _l("Card printed by a provider"),
        },
        # Which alerts the inbox lists.
        "alert_state": {
            "open": _l("Open"),
            "all": _l("All, with acknowledged ones"),
        },
        # What an EVV exception is about (servicehub.visits.exceptions.NAMES holds the same words for reports).
        "exception_code": {
            Code.LATE_START: _l("Late start"),
            Code.EARLY_END: _l("Early end"),
            Code.LATE_END: _l("Late end"),
            Code.SHORT_VISIT: _l("Visit too short"),
            Code.LONG_VISIT: _l("Visit too long"),
            Code.FAR_CHECK_IN: _l("Checked in far from the address"),
            Code.FAR_CHECK_OUT: _l("Checked out far from the address"),
            Code.NO_CONFIRMATION: _l("No recipient confirmation"),
            Code.CODE_FAILED: _l("Confirmation code failed repeatedly"),
            Code.NO_TASKS: _l("No tasks recorded"),
            Code.MANUAL_ENTRY: _l("Manual entry"),
            Code.EDITED_TIMES: _l("Times edited"),
            Code.LATE_SUBMISSION: _l("Submitted late"),
            Code.OVERLAP: _l("Overlaps another visit"),
            Code.MISSED: _l("Missed visit"),
            Code.CANCELLED_LATE: _l("Cancelled late"),
            Code.FROZEN_MONTH: _l("Correction of a frozen month"),
        },
        # Where an exception stands: the provider explains it, the bureau decides.
        "exception_status": {
            ExceptionStatus.OPEN: _l("To explain"),
            ExceptionStatus.RESOLVED: _l("Explained, to decide"),
            ExceptionStatus.APPROVED: _l("Approved"),
            ExceptionStatus.REJECTED: _l("Rejected"),
            ExceptionStatus.CLEARED: _l("Cleared"),
            ExceptionStatus.WAIVED: _l("Waived"),
        },
        # Which exceptions the queue lists (the services' STATUS_FILTERS).
        "exception_state": {
            "undecided": _l("Undecided (rejected ones too)"),
            "to_explain": _l("To explain (rejected ones too)"),
            "open": _l("Not explained yet"),
            "resolved": _l("Explained, to decide"),
            "rejected": _l("Rejected"),
            "approved": _l("Approved"),
            "cleared": _l("Cleared"),
            "waived": _l("Waived"),
            "all": _l("All"),
        },
        # Why a visit departed from its plan, as the provider explains it.
        "resolution_reason": {
            ResolutionReason.GPS_INACCURATE: _l("The phone's position was off"),
            ResolutionReason.MET_ELSEWHERE: _l("Served where the recipient was"),
            ResolutionReason.DEVICE_PROBLEM: _l("Phone broken, flat or offline"),
            ResolutionReason.RECIPIENT_REQUEST: _l("At the recipient's request"),
            ResolutionReason.TRAFFIC_DELAY: _l("Delayed by traffic"),
            ResolutionReason.SCHEDULE_AGREED: _l("Time agreed with the recipient beforehand"),
            ResolutionReason.EMERGENCY: _l("An emergency"),
            ResolutionReason.UNABLE_TO_CONFIRM: _l("The recipient cannot read a code or sign"),
            ResolutionReason.DATA_ENTRY_ERROR: _l("A wrong entry, corrected"),
            ResolutionReason.RECIPIENT_ABSENT: _l("Recipient away, in hospital or refused"),
            ResolutionReason.STAFF_SHORTAGE: _l("Caregiver ill, nobody could stand in"),
            ResolutionReason.OTHER: _l("Another reason (say which in the note)"),
        },
        # A step in an exception's history.
        "exception_step": {
            "raised": _l("Found by the checks"),
            "resolved": _l("Explained by the provider"),
            "approved": _l("Approved by the bureau"),
            "rejected": _l("Rejected by the bureau"),
            "cleared": _l("Cleared (no longer applies)"),
            "reopened": _l("Reopened (the facts changed)"),
            "waived": _l("Waived"),
        },
        # A ledger entry's kind, on an exception's page.
        "record_kind": {
            "check_in": _l("Check-in"),
            "delivery": _l("Check-out"),
            "missed": _l("Missed"),
            "cancelled": _l("Cancelled"),
            "correction": _l("Correction"),
            "approval": _l("Approval"),
        },
    }
)

NOTE_MAX_LENGTH = Length(max=NOTE_MAX)
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"


# --- filters --------------------------------------------------------------------------------


class AlertFilterForm(FilterForm):
    """Filters of the alert inbox: open ones (the default) or all, and one kind; a value not offered is ignored."""

    show = SelectField(_l("Show"), choices=choices("alert_state"), default="open")
    kind = SelectField(_l("Kind"), choices=choices("alert_kind", _l("Any")), default="")

    def filters(self) -> dict:
        """The service's list arguments."""
        return {"open_only": self.value("show") != "all", "kind": self.value("kind")}


class ExceptionFilterForm(FilterForm):
    """Filters of the exception queue: the status (undecided by default), the code, the organisation (managers),
    the worker and the month of the visits. The organisations and workers offered are set by the view."""

    status = SelectField(_l("Status"), choices=choices("exception_state"), default="undecided")
    code = SelectField(_l("Exception"), choices=choices("exception_code", _l("Any")), default="")
    organisation_id = SelectField(_l("Organisation"), coerce=int_or_none, default="", validate_choice=False)
    worker_id = SelectField(_l("Worker"), coerce=int_or_none, default="", validate_choice=False)
    month = StringField(_l("Month of the visits"), validators=[Optional(), Regexp(MONTH, message=_l("A month is written YYYY-MM."))])

    FILTERS = ("code", "organisation_id", "worker_id", "month")

    def filters(self) -> dict:
        """The service's list arguments (an empty or invalid filter is left out)."""
        chosen = {name: self.value(name) for name in self.FILTERS}
        return {"status": self.value("status") or "undecided", **{k: v for k, v in chosen.items() if v is not None}}

    def set_places(self, organisations, workers) -> None:
        """Offer these organisations (none: the field is not shown) and workers."""
        self.organisation_id.choices = [SelectChoice("", _l("Any"))] + [
            SelectChoice(str(o.id), o.short_name or o.name_zh) for o in organisations]
        self.worker_id.choices = [SelectChoice("", _l("Any"))] + [
            SelectChoice(str(w.id), w.name if len(organisations) <= 1 else
                         f"{w.name}（{w.organisation.short_name or w.organisation.name_zh}）") for w in workers]


# --- explaining and deciding exceptions -------------------------------------------------------


class ResolveForm(PageForm):
    """The provider explains an exception: a reason and a note (both required)."""

    next = HiddenField()
    reason_code = SelectField(_l("Reason"), choices=choices("resolution_reason", _l("Choose a reason")),
                              validators=[DataRequired(message=_l("Choose a reason."))], default="")
    note = TextAreaField(_l("Note on what happened"), validators=[DataRequired(message=_l("Say what happened.")),
                                                                  NOTE_MAX_LENGTH])


class DecideForm(PageForm):
    """The bureau approves or rejects an explained exception (a note is required to reject: the provider reads
    it)."""

    next = HiddenField()
    decision = StringField(validators=[AnyOf(["approve", "reject"], message=_l("Approve or reject."))])
    note = TextAreaField(_l("Decision note"), validators=[Optional(), NOTE_MAX_LENGTH])

    def validate(self, extra_validators=None) -> bool:
        """The fields, and a note when rejecting."""
        if not super().validate(extra_validators):
            return False
        if self.decision.data == "reject" and not (self.note.data or "").strip():
            self.note.errors = [*self.note.errors, _l("Say why it is rejected: the provider reads your note.")]
            return False
        return True


class _Ticked:
    exception_ids = SelectMultipleField(coerce=int, validate_choice=False,
                                        validators=[DataRequired(message=_l("Tick at least one exception."))])


class BulkResolveForm(_Ticked, ResolveForm):
    """One explanation for every ticked exception (all or none)."""


class BulkDecideForm(_Ticked, DecideForm):
    """One decision for every ticked exception (all or none)."""


class StepForm(PageForm):
    """A one-click step (print a card): the CSRF token only."""


# --- acknowledging --------------------------------------------------------------------------


class AcknowledgeForm(PageForm):
    """Acknowledge an alert: a note on what was done (required), and the page to go back to."""

    next = HiddenField()
    note = TextAreaField(
        _l("What was done"),
        validators=[DataRequired(message=_l("Say what was done.")), Length(max=NOTE_MAX)],
    )
