"""Web forms of the application pages (申请救助), and the words pages use for intake's coded values.

The forms check format and length only; the intake services decide what an application must say (a name, a
phone number to call back, the area, what happened, the help asked for), check the sum of the public form,
who may act on which application and in which state, and refuse with a ValidationFailed, Conflict,
PermissionDenied or RateLimited that the views put back onto the form or show as a message.
`service_data()` turns a valid form into what the service takes.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError

from servicehub.intake.models import STAFF_SOURCES, DayKind, Source, Status, StepKind, Urgency
from servicehub.registry.forms import ID_NUMBER, MultiCheckboxField
from servicehub.web.format import choices, define_labels
from servicehub.web.forms import FilterForm, PageForm

# --- the words for coded values -------------------------------------------------------------

LABELS = define_labels(
    {
        "application_status": {
            Status.NEW: _l("Waiting for first contact"),
            Status.CONTACTED: _l("Contacted"),
            Status.VISITED: _l("Home visit done"),
            Status.VERIFIED: _l("Verified"),
            Status.PROVISIONAL: _l("Emergency help started"),
            Status.APPROVED: _l("Approved"),
            Status.REJECTED: _l("Not approved"),
            Status.CLOSED: _l("Case closed"),
        },
        "application_source": {
            Source.PUBLIC: _l("Online"),
            Source.PHONE: _l("Phone call"),
            Source.HOTLINE: _l("12345 hotline"),
            Source.GRID: _l("Grid worker"),
            Source.WALK_IN: _l("At the counter"),
            Source.DISCOVERY: _l("Active discovery"),
        },
        "application_urgency": {
            Urgency.EMERGENCY: _l("Emergency"),
            Urgency.NORMAL: _l("Normal"),
        },
        "application_step": {
            StepKind.SUBMITTED: _l("Application received"),
            StepKind.CONTACTED: _l("Contacted"),
            StepKind.VISITED: _l("Home visit made"),
            StepKind.VERIFIED: _l("Situation verified"),
            StepKind.PROVISIONAL: _l("Emergency help started, documents to follow"),
            StepKind.APPROVED: _l("Approved"),
            StepKind.REJECTED: _l("Not approved"),
            StepKind.CLOSED: _l("Case closed"),
            StepKind.ESCALATED: _l("Escalated to the district"),
            StepKind.DOCUMENT_RECEIVED: _l("Document received"),
            StepKind.REMINDED: _l("Reminded of missing documents"),
            StepKind.NOTE: _l("Note"),
        },
        "calendar_day": {
            DayKind.HOLIDAY: _l("Day off"),
            DayKind.WORKDAY: _l("Weekend day worked (调休)"),
        },
        # The thresholds of the discovery rules (servicehub.intake.rules.RULES).
        "discovery_param": {
            "min_age": _l("Minimum age"),
            "in_a_row": _l("Missed in a row"),
            "service_type": _l("Service type of the welfare check"),
            "days": _l("Number of days"),
            "min_visits": _l("Minimum visits"),
        },
    }
)

# The steps a manager records by hand (services.record_step), in the order they usually happen.
STEP_CHOICES = (StepKind.CONTACTED, StepKind.VISITED, StepKind.VERIFIED, StepKind.NOTE, StepKind.CLOSED)
YES_NO = [SelectChoice("", _l("Any")), SelectChoice("yes", _l("Yes")), SelectChoice("no", _l("No"))]


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _upper(value):
    return value.strip().upper() if isinstance(value, str) else value


def _text(label, maximum: int, **kwargs):
    return StringField(label, validators=[Optional(), Length(max=maximum)], filters=[_strip], **kwargs)


def _area_text(label, maximum: int = 2000):
    return TextAreaField(label, validators=[Optional(), Length(max=maximum)], filters=[_strip])


# --- applying ----------------------------------------------------------------------------------


class ApplicationForm(PageForm):
    """What every application says: who, where, what happened, what help, and how to call back. Whether the
    required ones are there is the service's to say (its messages come back next to the fields)."""

    name = _text(_l("Who needs help (name)"), 50)
    phone = StringField(_l("Phone to call back"), validators=[Optional(), Length(max=20)], filters=[_strip])
    area = SelectField(_l("Town or community"), validate_choice=False)
    address = _text(_l("Address"), 200)
    situation = _area_text(_l("What has happened"))
    service_types = MultiCheckboxField(_l("Services needed"), validate_choice=False)
    help_text = _area_text(_l("Other help needed, in your own words"))
    contact_name = _text(_l("Contact person (if not the person themselves)"), 50)
    contact_phone = StringField(_l("Contact person's phone"), validators=[Optional(), Length(max=20)],
                                filters=[_strip])
    urgency = RadioField(_l("How urgent is it?"), default=Urgency.NORMAL.value, choices=[
        SelectChoice(Urgency.EMERGENCY.value, _l("Emergency: help is needed today")),
        SelectChoice(Urgency.NORMAL.value, _l("Not an emergency")),
    ])

    def service_data(self) -> dict:
        """What the intake services take."""
        return {
            "name": self.name.data or "",
            "phone": self.phone.data or "",
            "area": self.area.data or "",
            "address": self.address.data or "",
            "situation": self.situation.data or "",
            "service_types": list(self.service_types.data or []),
            "help_text": self.help_text.data or "",
            "contact_name": self.contact_name.data or "",
            "contact_phone": self.contact_phone.data or "",
            "urgency": self.urgency.data or Urgency.NORMAL.value,
        }


class PublicApplicationForm(ApplicationForm):
    """The public form, with the answer to its sum (the token is signed: the server keeps no state)."""

    challenge_token = HiddenField(validators=[Length(max=200)])
    challenge_answer = StringField(_l("Your answer"), validators=[Optional(), Length(max=10)], filters=[_strip])

    def service_data(self) -> dict:
        return {**super().service_data(), "challenge_token": self.challenge_token.data or "",
                "challenge_answer": self.challenge_answer.data or ""}


class StaffApplicationForm(ApplicationForm):
    """An application taken by staff: by phone, from the hotline, from a grid worker or at the counter."""

    source = SelectField(_l("Where the application came from"),
                         choices=[SelectChoice("", "—")] + [SelectChoice(s.value, LABELS["application_source"][s])
                                                           for s in STAFF_SOURCES],
                         validators=[InputRequired(message=_l("Say where the application came from."))])
    note = _area_text(_l("Note for the file"))

    def service_data(self) -> dict:
        return {**super().service_data(), "source": self.source.data, "note": self.note.data or ""}


class StatusForm(PageForm):
    """The status check: the reference and the phone number the application was filed with."""

    reference = StringField(_l("Reference number"), filters=[_upper], validators=[
        InputRequired(message=_l("Give the reference number, e.g. SQ-7KQ4-MZ3P.")), Length(max=20)])
    phone = StringField(_l("Phone number given in the application"), filters=[_strip], validators=[
        InputRequired(message=_l("Give the phone number given in the application.")), Length(max=20)])


# --- the work queue ----------------------------------------------------------------------------


class QueueFilterForm(FilterForm):
    """Filters of the work queue."""

    town = SelectField(_l("Town"), validate_choice=False)
    status = SelectField(_l("Status"), choices=choices("application_status", _l("Any")), validate_choice=False)
    source = SelectField(_l("Source"), choices=choices("application_source", _l("Any")), validate_choice=False)
    urgency = SelectField(_l("Urgency"), choices=choices("application_urgency", _l("Any")), validate_choice=False)
    overdue = SelectField(_l("Overdue"), choices=YES_NO, validate_choice=False)
    open_only = BooleanField(_l("Open only"))

    def filters(self) -> dict:
        """The service's list arguments."""
        return {
            "town": self.value("town"),
            "status": self.value("status"),
            "source": self.value("source"),
            "urgency": self.value("urgency"),
            "overdue": {"yes": True, "no": False}.get(self.overdue.data),
            "open_only": bool(self.open_only.data),
            "q": self.value("q"),
        }


# --- acting on an application ------------------------------------------------------------------


class ActionForm(PageForm):
    """A step that takes nothing but the click (and its CSRF token): a document received."""


class StepForm(PageForm):
    """Record a step: contacted, visited, verified, a note, closed (a note and closing need the why)."""

    kind = SelectField(_l("Step"), default=StepKind.CONTACTED.value,
                       choices=[SelectChoice(k.value, LABELS["application_step"][k]) for k in STEP_CHOICES])
    note = _area_text(_l("Note"))


class RejectForm(PageForm):
    """Refuse help, with the reason the applicant will be told."""

    reason = TextAreaField(_l("Reason (the applicant is told)"), filters=[_strip], validators=[
        InputRequired(message=_l("Give the reason.")), Length(max=2000)])


def _document_lines(form, field) -> None:
    lines = [line.strip() for line in (field.data or "").splitlines() if line.strip()]
    if len(lines) > 20:
        raise ValidationError(_l("At most 20 documents."))
    if any(len(line) > 100 for line in lines):
        raise ValidationError(_l("At most 100 characters a document."))


class ApproveForm(PageForm):
    """Approve help: at once as emergency help with documents to follow (先救助后补材料), or after verification.
    The person is found in the registry (by ID number, or name and phone) or registered with the fields
    below; a need starts today for each service ticked."""

    provisional = BooleanField(_l("Emergency help now, documents later (先救助后补材料)"))
    id_number = StringField(_l("ID number"), validators=[Optional(), ID_NUMBER], filters=[_upper])
    assistance_class = SelectField(_l("Assistance class"), validate_choice=False)
    area = SelectField(_l("Community"), validate_choice=False)
    lives_alone = BooleanField(_l("Lives alone"))
    service_types = MultiCheckboxField(_l("Services to start"), validate_choice=False)
    quantity = IntegerField(_l("Times a week"), default=1, validators=[
        InputRequired(message=_l("How many times a week?")), NumberRange(min=1, max=7)])
    documents = TextAreaField(_l("Documents to follow, one a line"), validators=[_document_lines])
    note = _area_text(_l("Note"))

    def document_list(self) -> list[str]:
        return [line.strip() for line in (self.documents.data or "").splitlines() if line.strip()]

    def service_data(self) -> dict:
        """What services.approve takes."""
        recipient = {"id_number": self.id_number.data or None, "assistance_class": self.assistance_class.data or None,
                     "area": self.area.data or None,
                     # only ticked is said: an unticked box must not clear it on someone already registered
                     "lives_alone": True if self.lives_alone.data else None}
        codes = list(dict.fromkeys(self.service_types.data or []))
        return {
            "provisional": bool(self.provisional.data),
            "recipient": {k: v for k, v in recipient.items() if v is not None},
            "needs": [{"service_type": code, "quantity": self.quantity.data} for code in codes] or None,
            "documents": (self.document_list() or None) if self.provisional.data else None,
            "note": self.note.data or "",
        }


# --- discovery rules ---------------------------------------------------------------------------


class RuleForm(PageForm):
    """Switch a discovery rule on or off and change its thresholds (fields added per rule by rule_form)."""

    enabled = BooleanField(_l("Runs every day"))

    PARAMS: tuple[str, ...] = ()

    def params(self) -> dict:
        """The thresholds as the service takes them."""
        return {name: self[name].data for name in self.PARAMS}


def rule_form(rule: dict, **kwargs) -> RuleForm:
    """The form of one rule: a number field for each numeric threshold, a text field for a code; its fields
    are prefixed with the rule's code, so that every rule's form on the page has its own ids."""
    fields = {}
    for name, value in rule["params"].items():
        label = LABELS["discovery_param"].get(name, name)
        if isinstance(value, int) and not isinstance(value, bool):
            fields[name] = IntegerField(label, validators=[InputRequired(message=_l("A whole number."))])
        else:
            fields[name] = StringField(label, validators=[InputRequired(), Length(max=10)], filters=[_upper])
    form_class = type(f"RuleForm_{rule['code']}", (RuleForm,), {**fields, "PARAMS": tuple(fields)})
    return form_class(prefix=rule["code"], **kwargs)


class CalendarDayForm(PageForm):
    """Enter a day of the working calendar: a day off, or a weekend day worked in exchange."""

    day = DateField(_l("Date"), validators=[InputRequired(message=_l("Pick a date."))])
    kind = SelectField(_l("Kind of day"), default=DayKind.HOLIDAY.value,
                       choices=[SelectChoice(k.value, LABELS["calendar_day"][k]) for k in DayKind])
    name = StringField(_l("Holiday"), validators=[Length(max=40)], filters=[lambda v: (v or "").strip()])


class CalendarYearForm(FilterForm):
    """Which year of the working calendar to show."""

    year = IntegerField(_l("Year"), validators=[Optional(), NumberRange(min=2000, max=2100)])
