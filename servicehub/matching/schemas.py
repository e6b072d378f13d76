"""Matching schemas: runs, outcomes and referrals in and out of the API."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from servicehub.catalog.codes import SERVICE_TYPE_CODES
from servicehub.database import utcnow
from servicehub.i18n import LanguageArgsSchema, Localized
from servicehub.matching.models import ReferralStatus
from servicehub.registry.schemas import AREA_CODE, sort_field, values
from servicehub.validators import ID


class MatchingRunCreateSchema(ma.Schema):
    """What to match: every open need you may see, a town's, or the needs listed."""

    town = fields.String(load_default=None, allow_none=True, validate=AREA_CODE,
                         metadata={"description": "Only needs of recipients in this town (镇/街道 code)"})
    need_ids = fields.List(fields.Integer(validate=ID), load_default=None, allow_none=True,
                           validate=validate.Length(min=1, max=10000))
    time_limit_s = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=1, max=600))


class ReferralSchema(ma.Schema):
    """A referral: which need, to which organisation's contract line, where in its lifecycle, and why."""

    id = fields.Integer(dump_only=True)
    need_id = fields.Integer(dump_only=True)
    recipient_id = fields.Integer(attribute="need.recipient_id", dump_only=True)
    recipient_name = fields.String(attribute="need.recipient.name", dump_only=True)
    town = fields.String(attribute="need.recipient.town.code", dump_only=True)
    service_type = fields.String(attribute="need.service_type.code", dump_only=True)
    service_type_name = Localized("name", attribute="need.service_type")
    organisation_id = fields.Integer(dump_only=True)
    organisation_name = Localized("name", attribute="organisation")
    contract_id = fields.Integer(dump_only=True)
    contract_code = fields.String(attribute="contract.code", dump_only=True)
    contract_line_id = fields.Integer(dump_only=True)
    run_id = fields.Integer(dump_only=True, allow_none=True)
    status = fields.String(dump_only=True, metadata={"enum": values(ReferralStatus)})
    locked = fields.Boolean(dump_only=True)
    score = fields.Float(dump_only=True, allow_none=True)
    score_breakdown = fields.Dict(dump_only=True, metadata={"description": "{factor: {value, score, weight}}"})
    monthly_units = fields.Float(dump_only=True)
    reserved_units = fields.Float(dump_only=True, metadata={"description": "Units held on the line until the contract ends"})
    start_date = fields.Date(dump_only=True)
    offered_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    offer_expires_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    overdue = fields.Function(
        lambda r: r.status == ReferralStatus.OFFERED and r.offer_expires_at is not None and r.offer_expires_at < utcnow(),
        dump_only=True, metadata={"type": "boolean", "description": "An offer past its answer deadline"},
    )
    responded_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    activated_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    ended_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    reason = fields.String(dump_only=True)


class OptionSchema(ma.Schema):
    """An eligible organisation for a need, with its score."""

    organisation_id = fields.Integer()
    organisation = fields.String()
    line_id = fields.Integer()
    contract = fields.String()
    score = fields.Float()
    breakdown = fields.Dict()


class RuledOutSchema(ma.Schema):
    """An organisation ruled out for a need, and the rule that ruled it out."""

    organisation_id = fields.Integer(allow_none=True)
    organisation = fields.String(allow_none=True)
    rule = fields.String()
    message = fields.String()


class OutcomeSummarySchema(ma.Schema):
    """A run's findings for one need: the alternatives, who was ruled out and why, why it was left unplaced."""

    alternatives = fields.List(fields.Nested(OptionSchema), dump_only=True)
    ruled_out = fields.List(fields.Nested(RuledOutSchema), dump_only=True)
    reason = fields.String(dump_only=True, metadata={
        "description": "Why the need was not placed: capacity (eligible lines used for others) or "
                       "no_eligible_organisation; empty when proposed"})


class OutcomeSchema(OutcomeSummarySchema):
    """What a run decided for one need, with its proposal."""

    need_id = fields.Integer(dump_only=True)
    proposal = fields.Nested(ReferralSchema, dump_only=True, allow_none=True)


class MatchingRunSchema(ma.Schema):
    """A matching run: its scope and what it found."""

    id = fields.Integer(dump_only=True)
    started_at = fields.AwareDateTime(dump_only=True)
    finished_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    actor = fields.String(dump_only=True)
    scope = fields.Dict(dump_only=True)
    weights = fields.Dict(dump_only=True)
    needs_considered = fields.Integer(dump_only=True)
    proposed = fields.Integer(dump_only=True)
    unmatched = fields.Integer(dump_only=True)
    greedy_placed = fields.Integer(dump_only=True, metadata={"description": "What first-come would have placed"})
    solver_status = fields.String(dump_only=True)
    seconds = fields.Float(dump_only=True)


class MatchingRunResultSchema(MatchingRunSchema):
    """A finished run with the first outcomes (the rest: GET …/outcomes)."""

    outcomes = fields.List(fields.Nested(OutcomeSchema), dump_only=True)


class OutcomeListArgs(LanguageArgsSchema):
    result = fields.String(validate=validate.OneOf(["proposed", "unmatched"]))


class UnmetNeedSchema(ma.Schema):
    """An open need with its current proposal and latest outcome."""

    need_id = fields.Integer(attribute="id", dump_only=True)
    recipient_id = fields.Integer(dump_only=True)
    recipient_name = fields.String(attribute="recipient.name", dump_only=True)
    town = fields.String(attribute="recipient.town.code", dump_only=True)
    service_type = fields.String(attribute="service_type.code", dump_only=True)
    priority = fields.String(dump_only=True)
    start_date = fields.Date(dump_only=True)
    proposal = fields.Nested(ReferralSchema, dump_only=True, allow_none=True)
    outcome = fields.Nested(OutcomeSummarySchema, dump_only=True, allow_none=True)


class UnmetNeedArgs(LanguageArgsSchema):
    town = fields.String(validate=AREA_CODE)
    service_type = fields.String(validate=validate.OneOf(SERVICE_TYPE_CODES))
    priority = fields.String(validate=validate.OneOf(["urgent", "normal"]))


class ReferralListArgs(LanguageArgsSchema):
    status = fields.String(validate=validate.OneOf(values(ReferralStatus)))
    organisation_id = fields.Integer(validate=ID)
    need_id = fields.Integer(validate=ID)
    recipient_id = fields.Integer(validate=ID)
    town = fields.String(validate=AREA_CODE)
    service_type = fields.String(validate=validate.OneOf(SERVICE_TYPE_CODES))
    overdue = fields.Boolean(metadata={"description": "Offers past their answer deadline"})
    sort = sort_field("id", "score", "offered_at", default="-id")


class ReferralCreateSchema(ma.Schema):
    """A manager's own choice of contract line for a need (locked against the next run)."""

    need_id = fields.Integer(required=True, validate=ID)
    contract_line_id = fields.Integer(required=True, validate=ID)


class ReasonSchema(ma.Schema):
    """A reason for the step (required to decline, suspend, close or withdraw)."""

    reason = fields.String(load_default="", validate=validate.Length(max=500))


class BulkOfferSchema(ma.Schema):
    """Referrals to offer (or accept) at once: all or none."""

    referral_ids = fields.List(fields.Integer(validate=ID), required=True,
                               validate=validate.Length(min=1, max=1000))
