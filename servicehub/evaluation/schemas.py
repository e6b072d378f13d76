"""Evaluation schemas: report queries in; KPI reports, drill-downs, frozen reports and scores out."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate
from webargs.fields import DelimitedList

from servicehub.evaluation.kpis import DIMENSIONS, PERIODS
from servicehub.i18n import LanguageArgsSchema
from servicehub.validators import ID, MONTH_PATTERN

MONTH = validate.Regexp(MONTH_PATTERN, error="Not a month (YYYY-MM).")
FORMATS = ("csv", "xlsx", "pdf")


class ReportFilterArgs(LanguageArgsSchema):
    """The period and the filters of a report."""

    first = fields.Date(data_key="from", required=True, metadata={"description": "First day (YYYY-MM-DD)"})
    last = fields.Date(data_key="to", required=True, metadata={"description": "Last day, at most five years on"})
    organisation_id = fields.Integer(load_default=None, validate=ID)
    contract_id = fields.Integer(load_default=None, validate=ID)
    service_type = fields.String(load_default=None, validate=validate.Regexp(r"^[A-Z]{2}\d{2}$"))
    category = fields.String(load_default=None, validate=validate.Regexp(r"^[A-Z]{2}$"))
    town_id = fields.Integer(load_default=None, validate=ID)
    recipient_class = fields.String(load_default=None, validate=validate.Length(min=1, max=32))
    worker_id = fields.Integer(load_default=None, validate=ID)
    recipient_id = fields.Integer(load_default=None, validate=ID)


class ReportArgs(ReportFilterArgs):
    """A report: the period, the filters and what to group by."""

    group_by = DelimitedList(fields.String(validate=validate.OneOf(DIMENSIONS + PERIODS)), load_default=list,
                             validate=validate.Length(max=4),
                             metadata={"description": "Comma-separated: any of the dimensions and one period"})


class ExportArgs(ReportArgs):
    format = fields.String(required=True, validate=validate.OneOf(FORMATS))


UNASSIGNABLE = ("contract", "worker")  # the dimensions a visit can have none of


class DrillDownArgs(ReportFilterArgs):
    """The records behind a group: the group's key as filters, and its period bucket if it has one."""

    granularity = fields.String(load_default=None, validate=validate.OneOf(PERIODS))
    bucket = fields.String(load_default=None, validate=validate.Length(min=4, max=10),
                           metadata={"description": "The group's period label: 2026-11, 2026-W47, 2026-Q4 …"})
    unassigned = fields.List(fields.String(validate=validate.OneOf(UNASSIGNABLE)), load_default=list, metadata={
        "description": "What the group has none of: contract (visits on days outside any contract in force), "
                       "worker (visits no worker was assigned to)"})

    @ma.validates_schema
    def both_or_neither(self, data, **kwargs):
        if (data.get("granularity") is None) != (data.get("bucket") is None):
            raise ma.ValidationError("Give granularity and bucket together.", "bucket")


class GroupSchema(ma.Schema):
    key = fields.Dict()
    figures = fields.Dict()


class ReportSchema(ma.Schema):
    first = fields.String(data_key="from")
    last = fields.String(data_key="to")
    group_by = fields.List(fields.String())
    filters = fields.Dict()
    groups = fields.List(fields.Nested(GroupSchema))
    total = fields.Dict()
    labels = fields.Dict()

    @ma.pre_dump
    def rename(self, data, **kwargs):
        return {**data, "first": data["from"], "last": data["to"]}


class DrillDownSchema(ma.Schema):
    first = fields.String(data_key="from")
    last = fields.String(data_key="to")
    key = fields.Dict()
    filters = fields.Dict()
    records = fields.List(fields.Dict())
    sums = fields.Dict()
    labels = fields.Dict()

    @ma.pre_dump
    def rename(self, data, **kwargs):
        return {**data, "first": data["from"], "last": data["to"]}


class DefinitionSchema(ma.Schema):
    code = fields.String()
    group = fields.String()
    unit = fields.String()
    name_zh = fields.String()
    name_en = fields.String()
    text_zh = fields.String()
    text_en = fields.String()


class FreezeSchema(ma.Schema):
    contract_id = fields.Integer(required=True, validate=ID)
    month = fields.String(required=True, validate=MONTH)
    accept_open_exceptions = fields.Boolean(load_default=False, metadata={
        "description": "Freeze even though some of the month's exceptions are not decided yet (they are listed "
                       "in the frozen settlement); without it such a month is refused (409 open_exceptions)"})


class FrozenListArgs(LanguageArgsSchema):
    contract_id = fields.Integer(load_default=None, validate=ID)
    month = fields.String(load_default=None, validate=MONTH)


class FrozenFormatArgs(LanguageArgsSchema):
    format = fields.String(required=True, validate=validate.OneOf(FORMATS))


class FrozenSummarySchema(ma.Schema):
    id = fields.Integer()
    contract_id = fields.Integer()
    organisation_id = fields.Integer()
    period_start = fields.Date()
    period_end = fields.Date()
    record_count = fields.Integer()
    content_hash = fields.String()
    code_version = fields.String()
    generated_at = fields.AwareDateTime()
    generated_by = fields.String()
    open_exceptions = fields.Integer(allow_none=True, metadata={
        "description": "Exceptions of the month still undecided when it was frozen (null: frozen before "
                       "settlements existed)"})


class FrozenSchema(FrozenSummarySchema):
    parameters = fields.Dict()
    figures = fields.Dict()
    settlement = fields.Nested(lambda: SettlementSchema(), allow_none=True, metadata={
        "description": "The month's settlement as it was frozen"})


class ComparisonSchema(ma.Schema):
    frozen_id = fields.Integer()
    content_hash = fields.String()
    current_hash = fields.String()
    unchanged = fields.Boolean()
    records = fields.List(fields.Dict())
    figures = fields.List(fields.Dict())
    settlement = fields.List(fields.Nested(lambda: SettlementChangeSchema()), metadata={
        "description": "What differs between the frozen settlement and today's"})
    pending_corrections = fields.List(fields.Nested(lambda: PendingCorrectionSchema()), metadata={
        "description": "Corrections of the month's visits waiting for the bureau"})


class ScoreSchema(ma.Schema):
    organisation_id = fields.Integer()
    period_start = fields.Date()
    period_end = fields.Date()
    score = fields.Float(allow_none=True)
    components = fields.Dict()
    weights = fields.Dict()
    person_times = fields.Integer()
    computed_at = fields.AwareDateTime()


# --- monthly settlements ---------------------------------------------------------------------------------------


class SettlementArgs(LanguageArgsSchema):
    month = fields.String(required=True, validate=MONTH, metadata={"description": "YYYY-MM, a month of the contract"})


class SettlementExportArgs(SettlementArgs):
    format = fields.String(required=True, validate=validate.OneOf(FORMATS))


class SettlementLineSchema(ma.Schema):
    line_id = fields.Integer()
    service_type = fields.String()
    unit = fields.String(metadata={"enum": ["visit", "hour", "meal", "day"]})
    billing = fields.String(metadata={"enum": ["visit", "minute"]})
    step_min = fields.Integer(metadata={"description": "Verified minutes are rounded to this step (half up)"})
    min_share = fields.Float(metadata={"description": "Below this share of the planned length a visit is paid "
                                                      "only once the bureau approves it (short_visit)"})
    unit_price_fen = fields.Integer()
    contracted_quantity = fields.Integer()
    delivered = fields.Integer(metadata={"description": "Delivered visits of the month"})
    verified = fields.Integer(metadata={"description": "Delivered visits with every exception approved or waived"})
    units = fields.Float(metadata={"description": "Billable units of the verified visits"})
    amount_fen = fields.Integer(metadata={"description": "What the verified visits pay (应付金额)"})
    unverified = fields.Integer(metadata={"description": "Delivered visits with exceptions not decided or rejected"})
    unverified_units = fields.Float()
    unverified_fen = fields.Integer(metadata={"description": "What they would pay once approved"})
    rejected = fields.Integer(metadata={"description": "Of the unverified, those with a rejected exception"})


class FundingShareSchema(ma.Schema):
    source = fields.String()
    funder = fields.String()
    share = fields.Float(metadata={"description": "The source's share of the contract's funding"})
    amount_fen = fields.Integer(metadata={"description": "Its part of the total, to the fen"})


class StandingExceptionSchema(ma.Schema):
    code = fields.String()
    status = fields.String(metadata={"enum": ["open", "resolved", "rejected"]})


class UnsettledVisitSchema(ma.Schema):
    visit_id = fields.Integer()
    service_date = fields.String()
    line_id = fields.Integer()
    recipient = fields.Integer()
    worker = fields.Integer(allow_none=True)
    units = fields.Float()
    amount_fen = fields.Integer(metadata={"description": "What it would pay once its exceptions are approved"})
    exceptions = fields.List(fields.Nested(StandingExceptionSchema))


class SettlementSchema(ma.Schema):
    contract_id = fields.Integer()
    first = fields.String(data_key="from")
    last = fields.String(data_key="to")
    lines = fields.List(fields.Nested(SettlementLineSchema))
    total_fen = fields.Integer(metadata={"description": "The amount owed: the verified visits' amounts summed"})
    delivered = fields.Integer()
    verified = fields.Integer()
    unverified = fields.Integer()
    unverified_fen = fields.Integer()
    by_funding = fields.List(fields.Nested(FundingShareSchema))
    unsettled = fields.List(fields.Nested(UnsettledVisitSchema), metadata={
        "description": "Delivered visits not paid yet, with the exceptions standing in the way"})

    @ma.pre_dump
    def rename(self, data, **kwargs):
        return {**data, "first": data["from"], "last": data["to"]}


class SettlementChangeSchema(ma.Schema):
    line_id = fields.Integer(allow_none=True)
    service_type = fields.String(allow_none=True)
    visit_id = fields.Integer()
    figure = fields.String(metadata={"description": "verified, units, amount_fen, unverified, unverified_fen or "
                                                    "total_fen"})
    frozen = fields.Raw(allow_none=True)
    now = fields.Raw(allow_none=True)


class PendingCorrectionSchema(ma.Schema):
    visit_id = fields.Integer()
    correction_id = fields.Integer(allow_none=True)
    status = fields.String()


class NamesSchema(ma.Schema):
    recipients = fields.Dict(keys=fields.String(), values=fields.String())
    workers = fields.Dict(keys=fields.String(), values=fields.String())
    service_types = fields.Dict(keys=fields.String(), values=fields.Dict())


class ContractSettlementSchema(ma.Schema):
    contract_id = fields.Integer()
    contract_code = fields.String()
    contract_name = fields.String()
    contract_name_en = fields.String()
    organisation_id = fields.Integer()
    organisation_name = fields.String()
    month = fields.String()
    frozen = fields.Boolean(metadata={"description": "Whether the settlement shown is the one frozen with the "
                                                     "month's report"})
    frozen_id = fields.Integer(allow_none=True)
    frozen_at = fields.AwareDateTime(allow_none=True)
    frozen_by = fields.String(allow_none=True)
    frozen_open_exceptions = fields.Integer(allow_none=True)
    settlement = fields.Nested(SettlementSchema, metadata={"description": "As frozen, or as it stands today"})
    current = fields.Nested(SettlementSchema, allow_none=True, metadata={
        "description": "Today's settlement of a frozen month (null while the month is not frozen)"})
    differences = fields.List(fields.Nested(SettlementChangeSchema))
    pending_corrections = fields.List(fields.Nested(PendingCorrectionSchema))
    undecided = fields.Integer(metadata={"description": "Exceptions of the month not decided yet"})
    exception_ids = fields.Dict(keys=fields.String(), values=fields.Dict(keys=fields.String(), values=fields.Integer()),
                                metadata={"description": "Visit id -> exception code -> the exception's id"})
    names = fields.Nested(NamesSchema)
