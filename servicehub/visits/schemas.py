"""Service-record schemas: check-in, check-out, outcomes, corrections in; ledger entries and verification out."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from servicehub.i18n import LanguageArgsSchema
from servicehub.registry.schemas import values
from servicehub.validators import ID, MONTH_PATTERN
from servicehub.visits.exceptions import Code
from servicehub.visits.models import (
    AlertKind,
    CorrectionReason,
    ExceptionStatus,
    MissedReason,
    RecordKind,
    ResolutionReason,
)
from servicehub.visits.queue import STATUS_FILTERS

LAT = validate.Range(min=-90, max=90)
LON = validate.Range(min=-180, max=180)


class IdempotencyHeaderSchema(ma.Schema):
    """Every write carries an idempotency key: a retried request returns what the first one wrote."""

    class Meta:
        unknown = ma.EXCLUDE

    key = fields.String(data_key="Idempotency-Key", required=True, validate=validate.Length(min=8, max=64),
                        metadata={"description": "A fresh random string per action (a UUID); reuse it to retry"})


class CheckInSchema(ma.Schema):
    lat = fields.Float(required=True, validate=LAT)
    lon = fields.Float(required=True, validate=LON)
    at = fields.AwareDateTime(load_default=None, allow_none=True,
                              metadata={"description": "When it happened (offline records); default: now"})


class CheckOutSchema(CheckInSchema):
    tasks = fields.List(fields.String(validate=validate.Length(max=40)), load_default=list,
                        validate=validate.Length(max=30), metadata={"description": "Checklist codes done"})
    confirmation_method = fields.String(load_default="none", validate=validate.OneOf(["code", "signature", "none"]))
    confirmation_code = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"^\d{6}$"),
                                      metadata={"description": "The 6-digit one-time code of the recipient's card "
                                                               "(the phone's current one, or the next printed one)"})
    signature = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=400_000),
                              metadata={"description": "data:image/png;base64,… of at least 160×60 pixels, signed"})
    satisfaction = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=5))
    notes = fields.String(load_default="", validate=validate.Length(max=2000))


class VisitOutcomeSchema(ma.Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(["missed", "cancelled"]))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=20),
                           metadata={"description": f"missed: one of {', '.join(values(MissedReason))}"})
    notes = fields.String(load_default="", validate=validate.Length(max=2000))
    at = fields.AwareDateTime(load_default=None, allow_none=True)


class CorrectionSchema(ma.Schema):
    """A correction of a delivery: times (the provider's; a caregiver's wait for approval) and tasks, with why.
    Satisfaction is the recipient's and cannot be corrected."""

    reason_code = fields.String(required=True, validate=validate.OneOf(
        [r for r in values(CorrectionReason) if r != CorrectionReason.WRONG_SATISFACTION]))
    notes = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    started_at = fields.AwareDateTime(load_default=None, allow_none=True)
    ended_at = fields.AwareDateTime(load_default=None, allow_none=True)
    tasks = fields.List(fields.String(validate=validate.Length(max=40)), validate=validate.Length(max=30))

    @ma.pre_load
    def _no_satisfaction(self, data, **kwargs):
        if isinstance(data, dict) and "satisfaction" in data:
            raise ma.ValidationError({"satisfaction": ["Satisfaction is the recipient's: staff cannot change it."]})
        return data


class RecordSchema(ma.Schema):
    """One ledger entry."""

    id = fields.Integer()
    organisation_id = fields.Integer()
    sequence = fields.Integer()
    kind = fields.String(metadata={"enum": values(RecordKind)})
    visit_id = fields.Integer()
    recipient_id = fields.Integer()
    worker_id = fields.Integer(allow_none=True)
    service_type = fields.String(attribute="visit.service_type.code")
    service_date = fields.Date()
    started_at = fields.AwareDateTime(allow_none=True)
    ended_at = fields.AwareDateTime(allow_none=True)
    lat = fields.Float(allow_none=True)
    lon = fields.Float(allow_none=True)
    distance_m = fields.Float(allow_none=True, metadata={"description": "From the recipient's address"})
    tasks = fields.List(fields.String())
    confirmation_method = fields.Function(lambda r: (r.confirmation or {}).get("method"), allow_none=True,
                             metadata={"type": "string"})
    satisfaction = fields.Integer(allow_none=True)
    notes = fields.String()
    outcome_reason = fields.String()
    flags = fields.List(fields.String(), metadata={"description": "The exception codes of the visit when the entry was "
                                                                  "made, and pending_approval / pending_bureau"})
    refers_to_id = fields.Integer(allow_none=True)
    reason_code = fields.String()
    recorded_by = fields.String()
    device_time = fields.AwareDateTime(allow_none=True)
    received_at = fields.AwareDateTime()
    prev_hash = fields.String()
    hash = fields.String()


class RecordListArgs(LanguageArgsSchema):
    visit_id = fields.Integer(validate=ID)
    organisation_id = fields.Integer(validate=ID)
    kind = fields.String(validate=validate.OneOf(values(RecordKind)))
    date_from = fields.Date()
    date_to = fields.Date()


class BrokenLinkSchema(ma.Schema):
    sequence = fields.Integer()
    record_id = fields.Integer(allow_none=True)
    problem = fields.String()


class LedgerCheckSchema(ma.Schema):
    organisation_id = fields.Integer()
    records = fields.Integer()
    ok = fields.Boolean()
    broken = fields.Nested(BrokenLinkSchema, allow_none=True)


class CardSchema(ma.Schema):
    """A recipient's confirmation card (never its secret or codes)."""

    card_no = fields.Integer()
    recipient_id = fields.Integer()
    issued_at = fields.AwareDateTime()
    issued_by = fields.String()
    revoked_at = fields.AwareDateTime(allow_none=True)
    printed_codes = fields.Integer()
    printed_used = fields.Integer(attribute="printed_next", metadata={"description": "Printed codes used so far"})
    in_force = fields.Function(lambda card: card.revoked_at is None, metadata={"type": "boolean"})


class EvvExceptionStepSchema(ma.Schema):
    action = fields.String()
    status = fields.String(metadata={"enum": values(ExceptionStatus)})
    reason_code = fields.String()
    note = fields.String()
    by = fields.String()
    at = fields.AwareDateTime()


class EvvExceptionSchema(ma.Schema):
    """An EVV exception of a visit, as the queue works it."""

    id = fields.Integer()
    visit_id = fields.Integer()
    code = fields.String(metadata={"enum": values(Code)})
    status = fields.String(metadata={"enum": values(ExceptionStatus)})
    organisation_id = fields.Integer()
    town_id = fields.Integer(allow_none=True)
    recipient_id = fields.Integer()
    worker_id = fields.Integer(allow_none=True)
    service_date = fields.Date()
    service_type = fields.String(attribute="visit.service_type.code")
    details = fields.Dict()
    raised_at = fields.AwareDateTime()
    reason_code = fields.String()
    resolution_note = fields.String()
    resolved_by = fields.String()
    resolved_at = fields.AwareDateTime(allow_none=True)
    decision_note = fields.String()
    decided_by = fields.String()
    decided_at = fields.AwareDateTime(allow_none=True)


class EvvExceptionDetailSchema(EvvExceptionSchema):
    steps = fields.List(fields.Nested(EvvExceptionStepSchema))


MONTH = validate.Regexp(MONTH_PATTERN, error="A month is written YYYY-MM.")


class ExceptionListArgs(LanguageArgsSchema):
    status = fields.String(load_default="undecided", validate=validate.OneOf(list(STATUS_FILTERS)),
                           metadata={"description": "undecided (open, explained or rejected: the default), one status, "
                                                    "or all"})
    code = fields.String(validate=validate.OneOf(values(Code)))
    organisation_id = fields.Integer(validate=ID)
    worker_id = fields.Integer(validate=ID)
    month = fields.String(validate=MONTH, metadata={"description": "The visits of one month, YYYY-MM"})


class ExceptionCountArgs(ExceptionListArgs):
    status = fields.String(load_default="all", validate=validate.OneOf(list(STATUS_FILTERS)))


# {code: {status: count}}, the codes with none left out.
ExceptionCountsSchema = ma.Schema.from_dict(
    {code: fields.Dict(keys=fields.String(validate=validate.OneOf(values(ExceptionStatus))),
                       values=fields.Integer(validate=validate.Range(min=1)))
     for code in values(Code)},
    name="ExceptionCounts",
)


class ResolveSchema(ma.Schema):
    reason_code = fields.String(required=True, validate=validate.OneOf(values(ResolutionReason)))
    note = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class DecideSchema(ma.Schema):
    decision = fields.String(required=True, validate=validate.OneOf(["approve", "reject"]))
    note = fields.String(load_default="", validate=validate.Length(max=2000),
                         metadata={"description": "Required to reject"})


IDS = fields.List(fields.Integer(validate=ID), required=True, validate=validate.Length(min=1, max=500))


class ResolveManySchema(ResolveSchema):
    ids = IDS


class DecideManySchema(DecideSchema):
    ids = IDS


class AlertSchema(ma.Schema):
    """An alert in an inbox."""

    id = fields.Integer()
    kind = fields.String(metadata={"enum": values(AlertKind)})
    organisation_id = fields.Integer(allow_none=True)
    town_id = fields.Integer(allow_none=True)
    recipient_id = fields.Integer(allow_none=True)
    visit_id = fields.Integer(allow_none=True)
    contract_id = fields.Integer(allow_none=True)
    worker_id = fields.Integer(allow_none=True)
    message = fields.String()
    raised_at = fields.AwareDateTime()
    acknowledged_at = fields.AwareDateTime(allow_none=True)
    acknowledged_by = fields.String()
    note = fields.String()


class AlertListArgs(LanguageArgsSchema):
    open = fields.Boolean(load_default=True, metadata={"description": "Only alerts not yet acknowledged"})
    kind = fields.String(validate=validate.OneOf(values(AlertKind)))


class AcknowledgeSchema(ma.Schema):
    note = fields.String(required=True, validate=validate.Length(min=1, max=2000))
