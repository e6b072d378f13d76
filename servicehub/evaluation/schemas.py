"""Evaluation schemas: report queries in; KPI reports, drill-downs, frozen reports and scores out."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate
from webargs.fields import DelimitedList

from servicehub.evaluation.kpis import DIMENSIONS, PERIODS
from servicehub.i18n import LanguageArgsSchema
from servicehub.validators import ID

MONTH = validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="Not a month (YYYY-MM).")
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


class FrozenSchema(FrozenSummarySchema):
    parameters = fields.Dict()
    figures = fields.Dict()


class ComparisonSchema(ma.Schema):
    frozen_id = fields.Integer()
    content_hash = fields.String()
    current_hash = fields.String()
    unchanged = fields.Boolean()
    records = fields.List(fields.Dict())
    figures = fields.List(fields.Dict())


class ScoreSchema(ma.Schema):
    organisation_id = fields.Integer()
    period_start = fields.Date()
    period_end = fields.Date()
    score = fields.Float(allow_none=True)
    components = fields.Dict()
    weights = fields.Dict()
    person_times = fields.Integer()
    computed_at = fields.AwareDateTime()
