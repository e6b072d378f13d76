"""Web forms of the scheduling pages, and the words pages use for scheduling's coded values.

The forms check presence and format; the scheduling services decide whether a run, a publication, an
absence or a move is allowed (whose organisation, which day, the hard rules of a route) and refuse with
a ValidationFailed, Conflict, NotFound or PermissionDenied that the views show on the page.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import DateField, HiddenField, IntegerField, SelectField, StringField, TimeField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from servicehub.scheduling.models import RunKind, RunStatus, VisitStatus
from servicehub.scheduling.services import MAX_TIME_LIMIT_S
from servicehub.visits.models import MissedReason
from servicehub.web.format import define_labels
from servicehub.web.forms import FilterForm, PageForm, int_or_none

# --- the words for coded values -------------------------------------------------------------

LABELS = define_labels(
    {
        "visit_status": {
            VisitStatus.PLANNED: _l("Not yet published"),
            VisitStatus.PUBLISHED: _l("Published"),
            VisitStatus.IN_PROGRESS: _l("Under way"),
            VisitStatus.COMPLETED: _l("Done"),
            VisitStatus.MISSED: _l("Missed"),
            VisitStatus.CANCELLED: _l("Cancelled"),
        },
        "run_status": {
            RunStatus.QUEUED: _l("Queued"),
            RunStatus.RUNNING: _l("Running"),
            RunStatus.SOLVED: _l("Solved, not published"),
            RunStatus.FAILED: _l("Failed"),
            RunStatus.PUBLISHED: _l("Published"),
        },
        "run_kind": {
            RunKind.PLAN: _l("Plan"),
            RunKind.REPLAN: _l("Re-plan"),
        },
        # Why the solver left a visit off every route (servicehub.scheduling.problem); "removed" and
        # "unplaced" are what a re-plan's changes say of a visit it dropped or that had no place before.
        "unplaced": {
            "no_qualified_worker": _l("No worker on shift has the qualification or gender it needs"),
            "window_outside_shifts": _l("No suitable worker can reach it inside its time window"),
            "capacity": _l("More meals than any suitable worker's box holds"),
            "no_room": _l("The suitable workers' days are full"),
            "window_passed": _l("Its time window has passed"),
            "pair_incomplete": _l("A double-up visit needs two suitable workers at the same time"),
            "removed": _l("Left out of the re-plan"),
            "unplaced": _l("Not placed"),
        },
        # The hard rules a manual move can break (servicehub.scheduling.moves.RULES), and a worker refused.
        "move_rule": {
            "worker": _l("Not an active worker of this organisation"),
            "not_on_shift": _l("The worker has no shift on this day"),
            "worker_absent": _l("The worker is out for the rest of the day"),
            "qualification": _l("The worker lacks the qualification it needs"),
            "gender": _l("The recipient asks for a carer of the other gender"),
            "double_up": _l("Both carers of a double-up visit must be different and start together"),
            "max_visits": _l("The worker already has the most visits allowed"),
            "capacity": _l("The meal box would be too full"),
            "window": _l("It would start outside its time window"),
            "overlap": _l("The worker cannot be there by then"),
            "break": _l("No room left for the worker's break"),
            "shift_end": _l("The worker would be back after the shift ends"),
            "max_minutes": _l("The worker's day would be longer than allowed"),
            "start_past": _l("It would start at a time already past"),
        },
        # What a re-plan did to a visit, relative to the published roster.
        "change": {
            "reassigned": _l("Reassigned"),
            "retimed": _l("New time"),
            "unplaced": _l("Left unplaced"),
            "placed": _l("Newly placed"),
        },
        # Why a visit did not happen (a caregiver gives one of MISSED_REASONS; "not_done" is what the
        # missed-visit check records when nobody recorded the visit by the end of its window).
        "missed_reason": {
            MissedReason.NOT_HOME: _l("The recipient was not at home"),
            MissedReason.REFUSED: _l("The recipient refused the service"),
            MissedReason.IN_HOSPITAL: _l("The recipient is in hospital"),
            MissedReason.WORKER_ABSENT: _l("The carer could not come"),
            MissedReason.OTHER: _l("Another reason (say which in the notes)"),
            "not_done": _l("Nobody recorded it in time"),
        },
        # How the recipient confirmed a visit at check-out.
        "confirmation": {
            "code": _l("Confirmed with the recipient's code"),
            "signature": _l("Signed by the recipient"),
            "none": _l("Not confirmed by the recipient"),
        },
        # The recipient's satisfaction with a visit, 1–5.
        "satisfaction": {
            1: _l("Very unhappy"),
            2: _l("Unhappy"),
            3: _l("So-so"),
            4: _l("Happy"),
            5: _l("Very happy"),
        },
    }
)

# The reasons a caregiver may give for a missed visit, in the order the phone page offers them.
MISSED_REASONS = (MissedReason.NOT_HOME, MissedReason.REFUSED, MissedReason.IN_HOSPITAL, MissedReason.WORKER_ABSENT,
                  MissedReason.OTHER)


# --- the day --------------------------------------------------------------------------------


class DayForm(FilterForm):
    """Which day of which organisation, as published or as a run would make it; a bad value is ignored."""

    date = DateField(_l("Date"), validators=[Optional()])
    organisation_id = SelectField(_l("Organisation"), coerce=int_or_none, validate_choice=False)
    run = IntegerField(validators=[Optional(), NumberRange(min=1)])


class StepForm(PageForm):
    """A one-click step (publish): the CSRF token and the page to go back to."""

    next = HiddenField()


class RunForm(StepForm):
    """Plan an organisation's day with the solver."""

    organisation_id = IntegerField(validators=[InputRequired(), NumberRange(min=1)])
    date = DateField(_l("Date"), validators=[InputRequired()])
    time_limit_s = IntegerField(
        _l("Search time (seconds)"), validators=[Optional(), NumberRange(min=1, max=int(MAX_TIME_LIMIT_S))]
    )


class ReplanNowForm(StepForm):
    """Re-plan an organisation's today from now (traffic, a late start)."""

    organisation_id = IntegerField(validators=[InputRequired(), NumberRange(min=1)])


class AbsenceForm(StepForm):
    """A worker drops out (from a time of the day, or all day): record it and re-plan the rest of the day."""

    worker_id = SelectField(_l("Worker"), coerce=int_or_none, validate_choice=False,
                            validators=[InputRequired(message=_l("Choose a worker."))])
    date = DateField(_l("Date"), validators=[InputRequired()])
    from_time = TimeField(_l("Out from"), validators=[Optional()])
    reason = StringField(_l("Reason"), validators=[DataRequired(message=_l("Give a reason.")), Length(max=200)])


class MoveForm(StepForm):
    """Put a visit on a worker's route (at a time, or the earliest that fits); it is locked there."""

    worker_id = SelectField(_l("Worker"), coerce=int_or_none, validate_choice=False,
                            validators=[InputRequired(message=_l("Choose a worker."))])
    start = TimeField(_l("Start at"), validators=[Optional()])


class RouteForm(FilterForm):
    """Whose route, on which day (providers checking a worker's phone view; a caregiver sees their own today)."""

    worker_id = IntegerField(validators=[Optional(), NumberRange(min=1)])
    date = DateField(validators=[Optional()])
