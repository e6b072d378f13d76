"""Web forms of the registry pages, and the words pages use for the registry's coded values.

The forms check presence, format and ranges; the registry services check the rules (ID number check
digits, windows that fit the duration, eligibility ...) and their field errors are attached back onto
the form with `servicehub.web.forms.attach_errors`. `service_data()` turns a valid form into what the service takes.
"""

from __future__ import annotations

import re
from datetime import date

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    FloatField,
    Form,
    FormField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.fields import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from servicehub.registry.models import (
    Billing,
    CarerGender,
    ContractStatus,
    FundingSource,
    Gender,
    NeedPeriod,
    NeedSource,
    NeedStatus,
    OrganisationStatus,
    Priority,
    RecipientStatus,
    TravelMode,
)
from servicehub.web.format import WEEKDAY_KEYS, WEEKDAYS, choices, define_labels
from servicehub.web.forms import FilterForm, PageForm, int_or_none

# --- the words for coded values -------------------------------------------------------------

LABELS = define_labels(
    {
        "recipient_status": {
            RecipientStatus.ACTIVE: _l("Being served"),
            RecipientStatus.SUSPENDED: _l("Suspended"),
            RecipientStatus.EXITED: _l("Exited"),
        },
        "need_status": {
            NeedStatus.OPEN: _l("Waiting for a provider"),
            NeedStatus.MATCHED: _l("Matched"),
            NeedStatus.ACTIVE: _l("Being served"),
            NeedStatus.SUSPENDED: _l("Suspended"),
            NeedStatus.CLOSED: _l("Closed"),
        },
        "priority": {Priority.URGENT: _l("Urgent"), Priority.NORMAL: _l("Normal")},
        "period": {NeedPeriod.WEEK: _l("per week"), NeedPeriod.MONTH: _l("per month")},
        "source": {
            NeedSource.APPLICATION: _l("Application"),
            NeedSource.ASSESSMENT: _l("Assessment"),
            NeedSource.ACTIVE_DISCOVERY: _l("Active discovery"),
        },
        "gender": {Gender.MALE: _l("Male"), Gender.FEMALE: _l("Female")},
        "carer_gender": {
            CarerGender.ANY: _l("No preference"),
            CarerGender.MALE: _l("Male carer"),
            CarerGender.FEMALE: _l("Female carer"),
            CarerGender.SAME: _l("Same gender as the recipient"),
        },
        "travel_mode": {
            TravelMode.WALK: _l("On foot"),
            TravelMode.BICYCLE: _l("Bicycle"),
            TravelMode.EBIKE: _l("E-bike"),
            TravelMode.CAR: _l("Car"),
        },
        "funding": {
            FundingSource.GOVERNMENT: _l("Government purchase"),
            FundingSource.CHARITY: _l("Charity funds"),
            FundingSource.ORGANISATION: _l("Organisation's own funds"),
            FundingSource.OTHER: _l("Other"),
        },
        "contract_status": {
            ContractStatus.DRAFT: _l("Draft"),
            ContractStatus.ACTIVE: _l("In force"),
            ContractStatus.SUSPENDED: _l("Suspended"),
            ContractStatus.CLOSED: _l("Closed"),
        },
        "organisation_status": {
            OrganisationStatus.ACTIVE: _l("Active"),
            OrganisationStatus.SUSPENDED: _l("Suspended"),
            OrganisationStatus.INACTIVE: _l("Inactive"),
        },
        # How a contract line pays a verified visit.
        "billing": {
            Billing.VISIT: _l("Per visit"),
            Billing.MINUTE: _l("Per verified minute"),
        },
    }
)


def organisation_choices(organisations, blank: str) -> list[SelectChoice]:
    """A select's choices of organisations (by short name), after a blank first choice labelled `blank`."""
    return [SelectChoice("", blank)] + [SelectChoice(str(o.id), o.short_name or o.name_zh) for o in organisations]


def _yes_no(value):
    return {"yes": True, "no": False}.get(value)


YES_NO = [SelectChoice("", _l("Any")), SelectChoice("yes", _l("Yes")), SelectChoice("no", _l("No"))]

# --- recipients -----------------------------------------------------------------------------


class RecipientFilterForm(FilterForm):
    """Filters of the recipients list."""

    town = SelectField(_l("Town"), validate_choice=False)
    assistance_class = SelectField(_l("Assistance class"), validate_choice=False)
    status = SelectField(_l("Status"), choices=choices("recipient_status", _l("Any")), validate_choice=False)
    has_unmet_need = SelectField(_l("Waiting for a provider"), choices=YES_NO, validate_choice=False)

    def filters(self) -> dict:
        """The service's list arguments."""
        return {
            "town": self.value("town"),
            "assistance_class": self.value("assistance_class"),
            "status": self.value("status"),
            "has_unmet_need": _yes_no(self.has_unmet_need.data),
            "q": self.value("q"),
        }


ID_NUMBER = Regexp(r"^[0-9]{17}[0-9X]$", message=_l("17 digits and a final digit or X."))
PHONE = Regexp(r"^([0-9-]{7,20})?$", message=_l("Digits (and '-') only, 7 to 20 characters."))


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _upper(value):
    return value.strip().upper() if isinstance(value, str) else value


class RecipientForm(PageForm):
    """Register a recipient (救助对象登记)."""

    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=50)], filters=[_strip])
    id_number = StringField(_l("ID number"), validators=[DataRequired(), ID_NUMBER], filters=[_upper])
    assistance_class = SelectField(_l("Assistance class"), validators=[DataRequired()], validate_choice=False)
    subclass = SelectField(_l("Subclass"), validate_choice=False)
    class_valid_until = DateField(_l("Class valid until"), validators=[Optional()])
    disability_grade = SelectField(
        _l("Disability grade"),
        coerce=int_or_none,
        validate_choice=False,
        choices=[SelectChoice("", "—")] + [SelectChoice(str(g), str(g)) for g in range(1, 5)],
    )
    lives_alone = BooleanField(_l("Lives alone"))
    area = SelectField(_l("Community"), validators=[DataRequired()], validate_choice=False)
    address = StringField(_l("Address"), validators=[DataRequired(), Length(max=200)], filters=[_strip])
    lat = FloatField(_l("Latitude"), validators=[Optional(), NumberRange(min=-90, max=90)])
    lon = FloatField(_l("Longitude"), validators=[Optional(), NumberRange(min=-180, max=180)])
    phone = StringField(_l("Phone"), validators=[Optional(), PHONE], filters=[_strip])
    family_carer_name = StringField(
        _l("Family carer"), validators=[Optional(), Length(max=50)], filters=[_strip]
    )
    family_carer_phone = StringField(
        _l("Family carer's phone"), validators=[Optional(), PHONE], filters=[_strip]
    )
    carer_gender = SelectField(_l("Carer gender wished"), choices=choices("carer_gender"), default="any")
    language = StringField(
        _l("Language or dialect"), validators=[Optional(), Length(max=20)], filters=[_strip]
    )
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=2000)])

    def service_data(self) -> dict:
        """What services.register_recipient takes."""
        return {
            "name": self.name.data,
            "id_number": self.id_number.data,
            "gender": None,
            "assistance_class": self.assistance_class.data,
            "subclass": self.subclass.data or None,
            "class_valid_until": self.class_valid_until.data,
            "disability_grade": self.disability_grade.data,
            "lives_alone": bool(self.lives_alone.data),
            "area": self.area.data,
            "address": self.address.data,
            "lat": self.lat.data,
            "lon": self.lon.data,
            "phone": self.phone.data or "",
            "family_carer_name": self.family_carer_name.data or "",
            "family_carer_phone": self.family_carer_phone.data or "",
            "carer_gender": self.carer_gender.data,
            "language": self.language.data or "",
            "notes": self.notes.data or "",
        }


# --- needs ----------------------------------------------------------------------------------


class MultiCheckboxField(SelectMultipleField):
    """A set of checkboxes (e.g. the weekdays)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class NeedEditForm(PageForm):
    """Change a line of the need list (its service type stays)."""

    quantity = IntegerField(_l("How many times"), validators=[InputRequired(), NumberRange(min=1, max=93)])
    period = SelectField(_l("Per"), choices=choices("period"), default="week")
    preferred_days = MultiCheckboxField(
        _l("Preferred days"),
        coerce=int,
        choices=[SelectChoice(str(n), WEEKDAYS[k]) for n, k in enumerate(WEEKDAY_KEYS, 1)],
    )
    window_start = TimeField(_l("Window from"), validators=[Optional()])
    window_end = TimeField(_l("Window until"), validators=[Optional()])
    duration_min = IntegerField(
        _l("Duration (minutes)"), validators=[Optional(), NumberRange(min=5, max=1440)]
    )
    priority = SelectField(_l("Priority"), choices=choices("priority"), default="normal")
    start_date = DateField(_l("Start date"), validators=[InputRequired()], default=date.today)
    end_date = DateField(_l("End date"), validators=[Optional()])
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=2000)])

    def service_data(self) -> dict:
        """What services.update_need takes (empty window or duration: keep / the type's default)."""
        return {
            "quantity": self.quantity.data,
            "period": self.period.data,
            "preferred_days": sorted(self.preferred_days.data or []),
            "window_start": self.window_start.data,
            "window_end": self.window_end.data,
            "duration_min": self.duration_min.data,
            "priority": self.priority.data,
            "start_date": self.start_date.data,
            "end_date": self.end_date.data,
            "notes": self.notes.data or "",
        }


class NeedForm(NeedEditForm):
    """Add a line to a recipient's need list."""

    service_type = SelectField(_l("Service"), validators=[DataRequired()], validate_choice=False)
    source = SelectField(_l("How the need became known"), choices=choices("source"), default="assessment")

    def service_data(self) -> dict:
        """What services.create_need takes (without the recipient)."""
        return {**super().service_data(), "service_type": self.service_type.data, "source": self.source.data}


class NeedStatusForm(FlaskForm):
    """Suspend, close or reopen a need."""

    status = SelectField(choices=[SelectChoice(s) for s in ("open", "suspended", "closed")])


# --- organisations and workers --------------------------------------------------------------


class WorkerFilterForm(FilterForm):
    """Filters of the workers list."""

    organisation_id = SelectField(_l("Organisation"), coerce=int_or_none, validate_choice=False)
    active = SelectField(_l("Active"), choices=YES_NO, validate_choice=False)

    def filters(self) -> dict:
        """The service's list arguments."""
        return {
            "organisation_id": self.value("organisation_id"),
            "active": _yes_no(self.active.data),
            "q": self.value("q"),
        }


_INTERVAL = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])\s*[-–~]\s*([01][0-9]|2[0-3]):([0-5][0-9])$")


def parse_intervals(text: str | None) -> list[list[str]]:
    """'08:00-12:00, 13:30-17:30' -> [['08:00', '12:00'], ['13:30', '17:30']]; ValueError if malformed."""
    intervals = []
    for part in re.split(r"[,，;；\s]+(?=\d)", (text or "").strip()):
        if not part:
            continue
        match = _INTERVAL.match(part.strip())
        if not match:
            raise ValueError(part)
        h1, m1, h2, m2 = match.groups()
        intervals.append([f"{h1}:{m1}", f"{h2}:{m2}"])
    return intervals


def format_intervals(intervals) -> str:
    """The inverse of parse_intervals."""
    return ", ".join(f"{start}-{end}" for start, end in intervals or [])


def _intervals(form, field):
    try:
        parse_intervals(field.data)
    except ValueError as exc:
        raise ValidationError(
            _l("Write times like 08:00-12:00, 13:30-17:30 (not “%(part)s”).", part=str(exc))
        ) from exc


class QualificationRow(Form):
    """One qualification of a worker: held or not, certificate number, expiry."""

    held = BooleanField(_l("Holds it"))
    certificate_no = StringField(
        _l("Certificate no."), validators=[Optional(), Length(max=64)], filters=[_strip]
    )
    expires_on = DateField(_l("Expires on"), validators=[Optional()])


class WorkerForm(PageForm):
    """Add or change a worker: details, start location, availability, limits, qualifications."""

    organisation_id = SelectField(_l("Organisation"), coerce=int_or_none, validate_choice=False)
    employee_no = StringField(
        _l("Employee no."), validators=[DataRequired(), Length(max=32)], filters=[_strip]
    )
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=50)], filters=[_strip])
    gender = SelectField(_l("Gender"), choices=choices("gender"))
    phone = StringField(_l("Mobile phone"), validators=[Optional(), PHONE], filters=[_strip])
    start_station_id = SelectField(_l("Starts the day at"), coerce=int_or_none, validate_choice=False)
    start_lat = FloatField(_l("Home latitude"), validators=[Optional(), NumberRange(min=-90, max=90)])
    start_lon = FloatField(_l("Home longitude"), validators=[Optional(), NumberRange(min=-180, max=180)])
    travel_mode = SelectField(_l("Travels by"), choices=choices("travel_mode"), default="ebike")
    avail_mon = StringField(WEEKDAYS["mon"], validators=[_intervals])
    avail_tue = StringField(WEEKDAYS["tue"], validators=[_intervals])
    avail_wed = StringField(WEEKDAYS["wed"], validators=[_intervals])
    avail_thu = StringField(WEEKDAYS["thu"], validators=[_intervals])
    avail_fri = StringField(WEEKDAYS["fri"], validators=[_intervals])
    avail_sat = StringField(WEEKDAYS["sat"], validators=[_intervals])
    avail_sun = StringField(WEEKDAYS["sun"], validators=[_intervals])
    max_minutes_per_day = IntegerField(
        _l("Most minutes a day"), validators=[InputRequired(), NumberRange(30, 720)], default=480
    )
    max_visits_per_day = IntegerField(
        _l("Most visits a day"), validators=[InputRequired(), NumberRange(1, 40)], default=10
    )
    languages = StringField(
        _l("Languages or dialects (comma-separated)"), validators=[Optional(), Length(max=200)]
    )
    active = BooleanField(_l("Active"), default=True)
    qualifications = FieldList(FormField(QualificationRow))

    def availability_fields(self):
        """The seven weekday fields, Monday first."""
        return [self[f"avail_{key}"] for key in WEEKDAY_KEYS]

    def service_data(self, qualifications, *, creating: bool) -> dict:
        """What services.create_worker / update_worker take; `qualifications` in the rows' order."""
        availability = {}
        for key in WEEKDAY_KEYS:
            intervals = parse_intervals(self[f"avail_{key}"].data)
            if intervals:
                availability[key] = intervals
        held = []
        for row, qualification in _rows(self.qualifications, qualifications):
            if row.held.data:
                held.append(
                    {
                        "code": qualification.code,
                        "certificate_no": row.certificate_no.data or "",
                        "expires_on": row.expires_on.data,
                    }
                )
        data = {
            "employee_no": self.employee_no.data,
            "name": self.name.data,
            "gender": self.gender.data,
            "phone": self.phone.data or "",
            "start_station_id": self.start_station_id.data,
            "start_lat": self.start_lat.data,
            "start_lon": self.start_lon.data,
            "travel_mode": self.travel_mode.data,
            "availability": availability,
            "max_minutes_per_day": self.max_minutes_per_day.data,
            "max_visits_per_day": self.max_visits_per_day.data,
            "languages": [x.strip() for x in re.split(r"[,，、]", self.languages.data or "") if x.strip()],
            "qualifications": held,
        }
        if creating:
            data["organisation_id"] = self.organisation_id.data
        else:
            data["active"] = bool(self.active.data)
        return data


def worker_form(qualifications, worker=None, **kwargs) -> WorkerForm:
    """A worker form with one qualification row per catalogue qualification (pre-filled from `worker`)."""
    rows = len(qualifications)
    form_class = type(
        "WorkerFormWithQualifications",
        (WorkerForm,),
        {
            "qualifications": FieldList(FormField(QualificationRow), min_entries=rows, max_entries=rows),
        },
    )
    if worker is not None and "formdata" not in kwargs:
        held = {wq.qualification_id: wq for wq in worker.qualifications}
        data = {
            "employee_no": worker.employee_no,
            "name": worker.name,
            "gender": worker.gender,
            "phone": worker.phone_shown,
            "start_station_id": worker.start_station_id,
            "start_lat": worker.start_lat,
            "start_lon": worker.start_lon,
            "travel_mode": worker.travel_mode,
            "max_minutes_per_day": worker.max_minutes_per_day,
            "max_visits_per_day": worker.max_visits_per_day,
            "languages": ", ".join(worker.languages or []),
            "active": worker.active,
            "organisation_id": worker.organisation_id,
            "qualifications": [
                {
                    "held": q.id in held,
                    "certificate_no": held[q.id].certificate_no if q.id in held else "",
                    "expires_on": held[q.id].expires_on if q.id in held else None,
                }
                for q in qualifications
            ],
            **{
                f"avail_{key}": format_intervals((worker.availability or {}).get(key)) for key in WEEKDAY_KEYS
            },
        }
        kwargs["data"] = data
    form = form_class(**kwargs)
    for row, qualification in _rows(form.qualifications, qualifications):
        row.qualification = qualification
    return form


def _rows(entries, qualifications):
    """(row, qualification) pairs, matched by the row's index in its name ("qualifications-2")."""
    for row in entries:
        index = int(row.name.rsplit("-", 1)[1])
        if index < len(qualifications):
            yield row, qualifications[index]


# --- contract lines ---------------------------------------------------------------------------


class BillingTermsForm(PageForm):
    """How one contract line pays a verified visit. The minimum is asked as a percentage of the planned duration
    (the service stores it as a share, 0..1)."""

    billing = SelectField(_l("Billing"), choices=choices("billing"))
    billing_step_min = IntegerField(_l("Round the verified minutes to (minutes)"), validators=[
        InputRequired(message=_l("Give the rounding step.")),
        NumberRange(min=1, max=60, message=_l("From 1 to 60 minutes.")),
    ])
    min_billable_percent = IntegerField(_l("Paid without approval from (per cent of the planned duration)"), validators=[
        InputRequired(message=_l("Give the minimum share.")),
        NumberRange(min=0, max=100, message=_l("From 0 to 100 per cent.")),
    ])

    # The service's field names -> this form's.
    FIELDS = {"billing": "billing", "billing_step_min": "billing_step_min", "min_billable_share": "min_billable_percent"}

    @classmethod
    def of(cls, line, **kwargs) -> BillingTermsForm:
        """The form of a line, filled with its terms (unless data was posted), its fields named after the line."""
        return cls(prefix=f"line-{line.id}", data={"billing": line.billing, "billing_step_min": line.billing_step_min,
                                                   "min_billable_percent": round(line.min_billable_share * 100)},
                   **kwargs)

    def terms(self) -> dict:
        """The service's arguments."""
        return {"billing": self.billing.data, "billing_step_min": self.billing_step_min.data,
                "min_billable_share": self.min_billable_percent.data / 100}
