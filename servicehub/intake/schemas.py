"""Application schemas: the public form and status check, staff registration, the work queue, steps, approval
and discovery rules, in and out of the API."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from servicehub.catalog.codes import SERVICE_TYPE_CODES
from servicehub.i18n import LanguageArgsSchema
from servicehub.intake.models import STAFF_SOURCES, DayKind, Source, Status, StepKind, Urgency
from servicehub.registry.schemas import (
    AREA_CODE,
    NeedCreateSchema,
    RecipientCreateSchema,
    values,
)

NAME = validate.Length(min=1, max=50)
PHONE_TEXT = validate.Length(min=7, max=20)
TEXT = validate.Length(max=2000)


class ApplicationFields(ma.Schema):
    """What every application says: who, where, what happened, what help, and how to call back."""

    name = fields.String(required=True, validate=NAME, metadata={"description": "The person who needs help"})
    phone = fields.String(required=True, validate=PHONE_TEXT,
                          metadata={"description": "A mobile (11 digits) or landline number to call back"})
    area = fields.String(required=True, validate=AREA_CODE,
                         metadata={"description": "Town (9 digits) or community (12 digits) of the address"})
    address = fields.String(load_default="", validate=validate.Length(max=200))
    situation = fields.String(required=True, validate=validate.Length(min=1, max=2000),
                              metadata={"description": "What happened"})
    service_types = fields.List(fields.String(validate=validate.OneOf(SERVICE_TYPE_CODES)), load_default=list,
                                validate=validate.Length(max=21))
    help_text = fields.String(load_default="", validate=TEXT, metadata={"description": "Help needed, in words"})
    contact_name = fields.String(load_default="", validate=validate.Length(max=50),
                                 metadata={"description": "Who is applying, if not the person"})
    contact_phone = fields.String(load_default="", validate=validate.Length(max=20))
    urgency = fields.String(load_default=Urgency.NORMAL.value, validate=validate.OneOf(values(Urgency)))


class PublicApplicationSchema(ApplicationFields):
    """An application from the public page, with the answer to its sum."""

    challenge_token = fields.String(required=True, validate=validate.Length(max=200))
    challenge_answer = fields.String(required=True, validate=validate.Length(max=10))


class StaffApplicationSchema(ApplicationFields):
    """An application taken by staff, with where it came from."""

    source = fields.String(required=True, validate=validate.OneOf([s.value for s in STAFF_SOURCES]))
    note = fields.String(load_default="", validate=TEXT)


class ChallengeSchema(ma.Schema):
    question = fields.String(dump_only=True, metadata={"example": "3 + 4"})
    token = fields.String(dump_only=True)


class FiledSchema(ma.Schema):
    """What the applicant is told when the application is in."""

    reference = fields.String(dump_only=True, metadata={"example": "SQ-7KQ4-MZ3P"})
    status = fields.String(dump_only=True)
    urgency = fields.String(dump_only=True)
    submitted_at = fields.DateTime(dump_only=True)
    due_at = fields.DateTime(dump_only=True, metadata={"description": "Someone will be in touch by then"})


class StatusCheckSchema(ma.Schema):
    reference = fields.String(required=True, validate=validate.Length(min=8, max=20))
    phone = fields.String(required=True, validate=PHONE_TEXT)


class PublicStepSchema(ma.Schema):
    kind = fields.String(dump_only=True)
    at = fields.DateTime(dump_only=True)


class PublicStatusSchema(FiledSchema):
    """An application as its applicant may see it: where it is and when each step happened (no notes)."""

    steps = fields.List(fields.Nested(PublicStepSchema), dump_only=True)
    first_contact_at = fields.DateTime(dump_only=True, allow_none=True)
    decided_at = fields.DateTime(dump_only=True, allow_none=True)


class StepSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    kind = fields.String(dump_only=True, metadata={"enum": values(StepKind)})
    note = fields.String(dump_only=True)
    status_after = fields.String(dump_only=True)
    by_name = fields.String(dump_only=True)
    at = fields.DateTime(dump_only=True)


class DocumentSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    due_on = fields.Date(dump_only=True)
    received_at = fields.DateTime(dump_only=True, allow_none=True)
    received_by = fields.String(dump_only=True)
    reminders = fields.Integer(dump_only=True)
    last_reminded_on = fields.Date(dump_only=True, allow_none=True)


class ApplicationSchema(ma.Schema):
    """An application in the work queue, with its deadline, steps and documents."""

    id = fields.Integer(dump_only=True)
    reference = fields.String(dump_only=True)
    source = fields.String(dump_only=True, metadata={"enum": values(Source)})
    urgency = fields.String(dump_only=True, metadata={"enum": values(Urgency)})
    status = fields.String(dump_only=True, metadata={"enum": values(Status)})
    town = fields.String(attribute="town.code", dump_only=True)
    town_name = fields.String(attribute="town.name_zh", dump_only=True)
    community = fields.String(attribute="community.code", dump_only=True, allow_none=True)
    name = fields.String(dump_only=True)
    phone = fields.String(attribute="phone_shown", dump_only=True, metadata={"description": "Masked for auditors"})
    address = fields.String(dump_only=True)
    situation = fields.String(dump_only=True)
    service_types = fields.List(fields.String(), dump_only=True)
    help_text = fields.String(dump_only=True)
    contact_name = fields.String(dump_only=True)
    contact_phone = fields.String(attribute="contact_phone_shown", dump_only=True,
                                  metadata={"description": "Masked for auditors"})
    recipient_id = fields.Integer(dump_only=True, allow_none=True)
    rule_code = fields.String(dump_only=True, allow_none=True)
    matching_run_id = fields.Integer(dump_only=True, allow_none=True)
    submitted_at = fields.DateTime(dump_only=True)
    due_at = fields.DateTime(dump_only=True)
    first_contact_at = fields.DateTime(dump_only=True, allow_none=True)
    escalated_at = fields.DateTime(dump_only=True, allow_none=True)
    decided_at = fields.DateTime(dump_only=True, allow_none=True)
    documents_due_on = fields.Date(dump_only=True, allow_none=True)
    created_by = fields.String(dump_only=True)
    documents = fields.List(fields.Nested(DocumentSchema), dump_only=True)


class ApplicationDetailSchema(ApplicationSchema):
    steps = fields.List(fields.Nested(StepSchema), dump_only=True)


class ApplicationListArgs(LanguageArgsSchema):
    town = fields.String(validate=AREA_CODE)
    status = fields.String(validate=validate.OneOf(values(Status)))
    source = fields.String(validate=validate.OneOf(values(Source)))
    urgency = fields.String(validate=validate.OneOf(values(Urgency)))
    overdue = fields.Boolean(metadata={"description": "Nobody in touch by the deadline"})
    open_only = fields.Boolean(load_default=False, metadata={"description": "Only applications still open"})
    q = fields.String(validate=validate.Length(max=50), metadata={"description": "Name, reference or phone"})


class StepCreateSchema(ma.Schema):
    kind = fields.String(required=True, validate=validate.OneOf(["contacted", "visited", "verified", "note", "closed"]))
    note = fields.String(load_default="", validate=TEXT)


class RejectSchema(ma.Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class ApprovalRecipientSchema(RecipientCreateSchema):
    """The person as the registry needs them (loaded partially: what is not given comes from the
    application)."""


class ApprovalNeedSchema(NeedCreateSchema):
    """A need to start (recipient and start date are the approval's: today)."""

    class Meta:
        exclude = ("recipient_id", "start_date", "source", "priority")


class ApprovalSchema(ma.Schema):
    """Approve help: at once as emergency help (`provisional`, documents to follow), or after verification."""

    provisional = fields.Boolean(load_default=False,
                                 metadata={"description": "先救助后补材料: help starts now, the documents follow"})
    recipient = fields.Nested(ApprovalRecipientSchema(partial=True), load_default=None, allow_none=True, metadata={
        "description": "The person as the registry needs them, for someone not registered yet (found by ID number, "
                       "or name and phone, otherwise). Name, phone and address default to the application's, the "
                       "community to the one it was filed under, coordinates to the community's centre."})
    needs = fields.List(fields.Nested(ApprovalNeedSchema), load_default=None, allow_none=True,
                        validate=validate.Length(min=1, max=21),
                        metadata={"description": "Default: one a week of each service type asked for"})
    documents = fields.List(fields.String(validate=validate.Length(min=1, max=100)), load_default=None,
                            allow_none=True, validate=validate.Length(min=1, max=20))
    note = fields.String(load_default="", validate=TEXT)


class ApprovalResultSchema(ma.Schema):
    application = fields.Nested(ApplicationDetailSchema, dump_only=True)
    recipient_id = fields.Integer(attribute="recipient.id", dump_only=True)
    recipient_created = fields.Boolean(dump_only=True)
    need_ids = fields.Function(lambda r: [n.id for n in r["needs"]], dump_only=True)
    matching_run_id = fields.Integer(attribute="matching_run.id", dump_only=True)


class DiscoveryRuleSchema(ma.Schema):
    code = fields.String(dump_only=True)
    name_zh = fields.String(dump_only=True)
    name_en = fields.String(dump_only=True)
    enabled = fields.Boolean(dump_only=True)
    params = fields.Dict(dump_only=True)
    text_zh = fields.String(dump_only=True)
    text_en = fields.String(dump_only=True)
    updated_at = fields.DateTime(dump_only=True, allow_none=True)
    updated_by = fields.String(dump_only=True)


class DiscoveryRuleUpdateSchema(ma.Schema):
    enabled = fields.Boolean(load_default=None, allow_none=True)
    params = fields.Dict(keys=fields.String(), load_default=None, allow_none=True)


class DiscoveryRunSchema(ma.Schema):
    filed = fields.Integer(dump_only=True)
    references = fields.List(fields.String(), dump_only=True)


class CalendarQuerySchema(ma.Schema):
    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=2100),
                          metadata={"description": "The year whose entered days to list"})


class CalendarDaySchema(ma.Schema):
    day = fields.Date(dump_only=True)
    kind = fields.String(dump_only=True, metadata={"description": "holiday: a day off; workday: a weekend day worked "
                                                                  "in exchange (调休)"})
    name = fields.String(dump_only=True, metadata={"description": "The holiday it belongs to, e.g. 春节"})
    updated_at = fields.DateTime(dump_only=True)
    updated_by = fields.String(dump_only=True)


class CalendarDaySetSchema(ma.Schema):
    kind = fields.String(required=True, validate=validate.OneOf(values(DayKind)))
    name = fields.String(load_default="", validate=validate.Length(max=40))
