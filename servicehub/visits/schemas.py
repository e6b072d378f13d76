"""Service-record schemas: check-in, check-out, outcomes, corrections in; ledger entries and verification out."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from servicehub.i18n import LanguageArgsSchema
from servicehub.registry.schemas import values
from servicehub.validators import ID
from servicehub.visits.models import AlertKind, CorrectionReason, MissedReason, RecordKind

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
    confirmation_code = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(r"^\d{4}$"))
    signature = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=400_000),
                              metadata={"description": "data:image/png;base64,…"})
    satisfaction = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=5))
    notes = fields.String(load_default="", validate=validate.Length(max=2000))


class VisitOutcomeSchema(ma.Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(["missed", "cancelled"]))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=20),
                           metadata={"description": f"missed: one of {', '.join(values(MissedReason))}"})
    notes = fields.String(load_default="", validate=validate.Length(max=2000))
    at = fields.AwareDateTime(load_default=None, allow_none=True)


class CorrectionSchema(ma.Schema):
    reason_code = fields.String(required=True, validate=validate.OneOf(values(CorrectionReason)))
    notes = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    started_at = fields.AwareDateTime(load_default=None, allow_none=True)
    ended_at = fields.AwareDateTime(load_default=None, allow_none=True)
    tasks = fields.List(fields.String(validate=validate.Length(max=40)), validate=validate.Length(max=30))
    satisfaction = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=5))


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
    flags = fields.List(fields.String(), metadata={"description": "far_from_address, duration, unconfirmed, "
                                                                  "pending_approval"})
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


class ConfirmationCodeSchema(ma.Schema):
    recipient_id = fields.Integer()
    code = fields.String()


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
