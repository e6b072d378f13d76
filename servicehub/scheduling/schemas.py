"""Scheduling schemas: visits, exceptions, runs, plans, roster versions and rosters in and out of the API."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from servicehub.i18n import LanguageArgsSchema, Localized
from servicehub.registry.schemas import HHMM, values
from servicehub.scheduling.models import RunKind, RunStatus, VisitStatus
from servicehub.validators import ID

TIME_LIMIT = validate.Range(min=0.1, max=300)


def _hhmm(moment) -> str | None:
    from servicehub.timeutil import district_tz

    return None if moment is None else moment.astimezone(district_tz()).strftime(HHMM)


class VisitSchema(ma.Schema):
    """A planned visit: to whom, what, when it may start, who goes and when (once planned)."""

    id = fields.Integer(dump_only=True)
    service_date = fields.Date(dump_only=True)
    organisation_id = fields.Integer(dump_only=True)
    referral_id = fields.Integer(dump_only=True)
    recipient_id = fields.Integer(dump_only=True)
    recipient_name = fields.String(attribute="recipient.name", dump_only=True)
    service_type = fields.String(attribute="service_type.code", dump_only=True)
    service_type_name = Localized("name", attribute="service_type")
    window = fields.Function(lambda v: {"start": v.window_start.strftime(HHMM), "end": v.window_end.strftime(HHMM)},
                             dump_only=True, metadata={"type": "object", "description": "Local times"})
    duration_min = fields.Integer(dump_only=True)
    slot = fields.Integer(dump_only=True, metadata={"description": "1 for the second carer of a double-up visit"})
    urgent = fields.Boolean(dump_only=True)
    status = fields.String(dump_only=True, metadata={"enum": values(VisitStatus)})
    worker_id = fields.Integer(dump_only=True, allow_none=True)
    worker_name = fields.String(attribute="worker.name", dump_only=True, allow_none=True)
    sequence = fields.Integer(dump_only=True, allow_none=True)
    planned_arrival = fields.AwareDateTime(dump_only=True, allow_none=True)
    planned_start = fields.AwareDateTime(dump_only=True, allow_none=True)
    planned_end = fields.AwareDateTime(dump_only=True, allow_none=True)
    travel_min = fields.Integer(dump_only=True, allow_none=True, metadata={"description": "From the previous stop"})
    locked = fields.Boolean(dump_only=True, metadata={"description": "Moved by hand: kept by the next optimisation"})
    unplaced_reason = fields.String(dump_only=True)
    cancel_reason = fields.String(dump_only=True)


class VisitListArgs(LanguageArgsSchema):
    organisation_id = fields.Integer(validate=ID)
    date = fields.Date(data_key="date", attribute="service_date")
    worker_id = fields.Integer(validate=ID)
    recipient_id = fields.Integer(validate=ID)
    status = fields.String(validate=validate.OneOf(values(VisitStatus)))


class GenerateSchema(ma.Schema):
    """Which organisation (default: yours, or all) and which days (default: the rolling horizon)."""

    organisation_id = fields.Integer(load_default=None, allow_none=True, validate=ID)
    date_from = fields.Date(load_default=None, allow_none=True)
    date_to = fields.Date(load_default=None, allow_none=True)


class GenerationReportSchema(ma.Schema):
    date_from = fields.Date()
    date_to = fields.Date()
    series = fields.Integer(metadata={"description": "Referrals looked at"})
    created = fields.Integer()
    cancelled = fields.Integer(metadata={"description": "Planned visits no longer in a series' plan"})
    restored = fields.Integer()
    kept = fields.Integer()


class MoveSchema(ma.Schema):
    """Move a visit to a worker, at a start time (local HH:MM) or the earliest that fits."""

    worker_id = fields.Integer(required=True, validate=ID)
    start = fields.Time(format=HHMM, load_default=None, allow_none=True)


class ExceptionCreateSchema(ma.Schema):
    """Days without visits: for one recipient (in hospital), one organisation, or everyone (a holiday)."""

    recipient_id = fields.Integer(load_default=None, allow_none=True, validate=ID)
    organisation_id = fields.Integer(load_default=None, allow_none=True, validate=ID)
    start_date = fields.Date(required=True)
    end_date = fields.Date(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


class ExceptionSchema(ExceptionCreateSchema):
    id = fields.Integer(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)


class RunCreateSchema(ma.Schema):
    """Plan an organisation's day (or days, up to 14)."""

    organisation_id = fields.Integer(required=True, validate=ID)
    date = fields.Date(required=True, attribute="date_from")
    date_to = fields.Date(load_default=None, allow_none=True)
    time_limit_s = fields.Float(load_default=None, allow_none=True, validate=TIME_LIMIT,
                                metadata={"description": "Search time per day (default 8 s)"})


class ReplanFromNowSchema(ma.Schema):
    """Re-plan an organisation's today from now."""

    time_limit_s = fields.Float(load_default=None, allow_none=True, validate=TIME_LIMIT,
                                metadata={"description": "Search time (default 8 s)"})


class RunListArgs(LanguageArgsSchema):
    organisation_id = fields.Integer(validate=ID)
    date = fields.Date(attribute="service_date")


class ChangeSchema(ma.Schema):
    date = fields.String(metadata={"format": "date"})
    visit_id = fields.Integer()
    change = fields.String(metadata={"enum": ["reassigned", "retimed", "unplaced", "placed"]})
    from_worker = fields.Integer(allow_none=True)
    to_worker = fields.Integer(allow_none=True)
    from_start = fields.Integer(allow_none=True, metadata={"description": "Minutes from midnight"})
    to_start = fields.Integer(allow_none=True)
    reason = fields.String()


class RunSchema(ma.Schema):
    """A solver run: where it is, and what it found."""

    id = fields.Integer(dump_only=True)
    organisation_id = fields.Integer(dump_only=True)
    kind = fields.String(dump_only=True, metadata={"enum": values(RunKind)})
    date_from = fields.Date(dump_only=True)
    date_to = fields.Date(dump_only=True)
    time_limit_s = fields.Float(dump_only=True)
    status = fields.String(dump_only=True, metadata={"enum": values(RunStatus)})
    progress = fields.Method("_progress", dump_only=True, metadata={"type": "number", "description": "0..1"})
    requested_by = fields.String(dump_only=True)
    requested_at = fields.AwareDateTime(dump_only=True)
    started_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    finished_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    published_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    absent_worker_id = fields.Integer(dump_only=True, allow_none=True)
    replan_from = fields.Function(
        lambda r: None if r.replan_from_min is None else f"{r.replan_from_min // 60:02d}:{r.replan_from_min % 60:02d}",
        dump_only=True, metadata={"type": "string"})
    objective = fields.Integer(dump_only=True, allow_none=True)
    visits = fields.Integer(attribute="visits_total", dump_only=True)
    placed = fields.Integer(dump_only=True)
    unplaced = fields.Integer(dump_only=True)
    travel_min = fields.Integer(dump_only=True)
    seconds = fields.Float(dump_only=True)
    changes = fields.List(fields.Nested(ChangeSchema), dump_only=True)
    error = fields.String(dump_only=True)

    def _progress(self, run):
        from servicehub.scheduling.services import run_progress

        return run_progress(run)


class PlanStopSchema(ma.Schema):
    visit_id = fields.Integer()
    worker_id = fields.Integer(allow_none=True)
    sequence = fields.Integer(allow_none=True)
    arrival = fields.Integer(allow_none=True, metadata={"description": "Minutes from midnight"})
    start = fields.Integer(allow_none=True)
    end = fields.Integer(allow_none=True)
    travel = fields.Integer(allow_none=True)
    unplaced = fields.String(allow_none=True, metadata={"description": "Why it could not be placed"})


class PlanDaySchema(ma.Schema):
    date = fields.Date()
    stops = fields.List(fields.Nested(PlanStopSchema))
    breaks = fields.Dict(keys=fields.String(), values=fields.List(fields.List(fields.Integer())))


class RosterVersionSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    organisation_id = fields.Integer(dump_only=True)
    service_date = fields.Date(dump_only=True)
    version = fields.Integer(dump_only=True)
    run_id = fields.Integer(dump_only=True, allow_none=True)
    published_at = fields.AwareDateTime(dump_only=True)
    published_by = fields.String(dump_only=True)
    visits = fields.Integer(dump_only=True)
    unplaced = fields.Integer(dump_only=True)
    snapshot = fields.List(fields.Dict(), dump_only=True)


class RosterVersionArgs(LanguageArgsSchema):
    organisation_id = fields.Integer(required=True, validate=ID)
    date = fields.Date(required=True, attribute="service_date")


class RosterArgs(LanguageArgsSchema):
    date = fields.Date(required=True, attribute="service_date")
    worker_id = fields.Integer(load_default=None, validate=ID,
                               metadata={"description": "Required except for a caregiver (their own)"})


class RosterStopSchema(ma.Schema):
    visit_id = fields.Integer(attribute="id")
    sequence = fields.Integer(allow_none=True)
    status = fields.String(metadata={"enum": values(VisitStatus)})
    recipient_id = fields.Integer()
    recipient_name = fields.String(attribute="recipient.name")
    address = fields.String(attribute="recipient.address")
    lat = fields.Float(attribute="recipient.lat")
    lon = fields.Float(attribute="recipient.lon")
    phone = fields.String(attribute="phone_shown", metadata={"description": "Masked unless you serve the recipient"})
    service_type = fields.String(attribute="service_type.code")
    service_type_name = Localized("name", attribute="service_type")
    planned_arrival = fields.Function(lambda v: _hhmm(v.planned_arrival), allow_none=True, metadata={"type": "string"})
    planned_start = fields.Function(lambda v: _hhmm(v.planned_start), allow_none=True, metadata={"type": "string"})
    planned_end = fields.Function(lambda v: _hhmm(v.planned_end), allow_none=True, metadata={"type": "string"})
    travel_min = fields.Integer(allow_none=True)
    window = fields.Function(lambda v: {"start": v.window_start.strftime(HHMM), "end": v.window_end.strftime(HHMM)},
                             metadata={"type": "object"})
    double_up = fields.Function(lambda v: v.series.carers == 2, metadata={"type": "boolean"})


class RosterSchema(ma.Schema):
    """A worker's day in route order, with planned arrival, travel and addresses."""

    date = fields.Date()
    worker_id = fields.Integer(attribute="worker.id")
    worker_name = fields.String(attribute="worker.name")
    visits = fields.List(fields.Nested(RosterStopSchema))
    travel_min = fields.Integer()


class AbsenceCreateSchema(ma.Schema):
    """A worker out from a time of day (default: the whole day); re-plan the rest of the day."""

    date = fields.Date(required=True)
    from_time = fields.Time(format=HHMM, data_key="from", load_default=None, allow_none=True)
    reason = fields.String(load_default="", validate=validate.Length(max=200))
    replan = fields.Boolean(load_default=True)
    time_limit_s = fields.Float(load_default=None, allow_none=True, validate=TIME_LIMIT)


class AbsenceResultSchema(ma.Schema):
    absence_id = fields.Integer()
    worker_id = fields.Integer()
    date = fields.Date()
    run = fields.Nested(RunSchema, allow_none=True)



class ScheduleSettingsSchema(ma.Schema):
    """Plan the next day every night (the run waits for a provider admin to publish it)."""

    organisation_id = fields.Integer(dump_only=True)
    auto_plan = fields.Boolean()
    time_limit_s = fields.Float(validate=TIME_LIMIT)
