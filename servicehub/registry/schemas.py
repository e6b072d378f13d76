"""Registry schemas: what the API accepts and returns for areas, stations, organisations, contracts,
workers, recipients and needs. Constraints live here so that they appear in the OpenAPI document;
rules that need the database or the configuration are checked by the services.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from servicehub.catalog.codes import (
    ASSISTANCE_CLASS_CODES,
    CATEGORY_CODES,
    QUALIFICATION_CODES,
    SERVICE_TYPE_CODES,
)
from servicehub.i18n import AllLanguages, LanguageArgsSchema, Localized
from servicehub.registry.models import (
    AreaLevel,
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
    StationKind,
    TravelMode,
)
from servicehub.registry.rules import WEEKDAYS
from servicehub.validators import ID


def values(enum_cls) -> list[str]:
    """The values of a string enum, for OneOf."""
    return [m.value for m in enum_cls]


def sort_field(*names: str, default: str) -> fields.String:
    """A `sort` parameter: one of the names, '-' in front for descending."""
    return fields.String(
        load_default=default,
        validate=validate.OneOf([*names, *(f"-{n}" for n in names)]),
        metadata={"description": f"Sort by {', '.join(names)}; prefix '-' for descending."},
    )


LAT = validate.Range(min=-90, max=90)
LON = validate.Range(min=-180, max=180)
NAME = validate.Length(min=1, max=100)
LONG_NAME = validate.Length(min=1, max=200)
PHONE = validate.Regexp(r"^([0-9-]{7,20})?$", error="Digits (and '-') only, 7 to 20 characters, or empty.")
AREA_CODE = validate.Regexp(r"^[0-9]{6}([0-9]{3}([0-9]{3})?)?$", error="6 digits (district), 9 (town) or 12 (community).")
HHMM = "%H:%M"
MONEY = validate.Range(min=0, max=10**12)


class WindowSchema(ma.Schema):
    """A local time window."""

    start = fields.Time(format=HHMM, required=True)
    end = fields.Time(format=HHMM, required=True)


class PointSchema(ma.Schema):
    """A point: latitude and longitude in degrees (WGS-84)."""

    lat = fields.Float(required=True, validate=LAT)
    lon = fields.Float(required=True, validate=LON)


class ListArgs(LanguageArgsSchema):
    """Common list parameters: a free-text search."""

    q = fields.String(validate=validate.Length(min=1, max=50), metadata={"description": "Search in names"})


# --- areas ----------------------------------------------------------------------------------


class AreaSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    code = fields.String(dump_only=True)
    name = Localized("name")
    names = AllLanguages("name")
    level = fields.String(dump_only=True, metadata={"enum": values(AreaLevel)})
    parent = fields.Function(lambda a: a.parent.code if a.parent else None, dump_only=True, allow_none=True,
                             metadata={"type": "string"})
    lat = fields.Float(attribute="centroid_lat", dump_only=True)
    lon = fields.Float(attribute="centroid_lon", dump_only=True)
    active = fields.Boolean(dump_only=True)


class AreaCreateSchema(ma.Schema):
    code = fields.String(required=True, validate=AREA_CODE)
    name_zh = fields.String(required=True, validate=NAME)
    name_en = fields.String(load_default="", validate=validate.Length(max=100))
    level = fields.String(required=True, validate=validate.OneOf(values(AreaLevel)))
    parent = fields.String(load_default=None, allow_none=True, validate=AREA_CODE)
    lat = fields.Float(required=True, validate=LAT)
    lon = fields.Float(required=True, validate=LON)


class AreaUpdateSchema(ma.Schema):
    name_zh = fields.String(validate=NAME)
    name_en = fields.String(validate=validate.Length(max=100))
    lat = fields.Float(validate=LAT)
    lon = fields.Float(validate=LON)
    active = fields.Boolean()


class AreaListArgs(ListArgs):
    level = fields.String(validate=validate.OneOf(values(AreaLevel)))
    parent = fields.String(validate=AREA_CODE, metadata={"description": "Code of the parent area"})
    active = fields.Boolean()
    sort = sort_field("code", "name", default="code")


# --- stations -------------------------------------------------------------------------------


class StationSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    code = fields.String(dump_only=True)
    name = Localized("name")
    names = AllLanguages("name")
    kind = fields.String(dump_only=True, metadata={"enum": values(StationKind)})
    area = fields.String(attribute="area.code", dump_only=True)
    area_name = Localized("name", attribute="area")
    organisation_id = fields.Integer(dump_only=True, allow_none=True)
    address = fields.String(dump_only=True)
    lat = fields.Float(dump_only=True)
    lon = fields.Float(dump_only=True)
    capacity = fields.Integer(dump_only=True, allow_none=True)
    active = fields.Boolean(dump_only=True)


class StationCreateSchema(ma.Schema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Z0-9-]{2,20}$"))
    name_zh = fields.String(required=True, validate=LONG_NAME)
    name_en = fields.String(load_default="", validate=validate.Length(max=200))
    kind = fields.String(required=True, validate=validate.OneOf(values(StationKind)))
    area = fields.String(required=True, validate=AREA_CODE)
    organisation_id = fields.Integer(load_default=None, allow_none=True, validate=ID)
    address = fields.String(load_default="", validate=validate.Length(max=200))
    lat = fields.Float(required=True, validate=LAT)
    lon = fields.Float(required=True, validate=LON)
    capacity = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0, max=10000))


class StationUpdateSchema(ma.Schema):
    name_zh = fields.String(validate=LONG_NAME)
    name_en = fields.String(validate=validate.Length(max=200))
    kind = fields.String(validate=validate.OneOf(values(StationKind)))
    area = fields.String(validate=AREA_CODE)
    organisation_id = fields.Integer(allow_none=True, validate=ID)
    address = fields.String(validate=validate.Length(max=200))
    lat = fields.Float(validate=LAT)
    lon = fields.Float(validate=LON)
    capacity = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=10000))
    active = fields.Boolean()


class StationListArgs(ListArgs):
    kind = fields.String(validate=validate.OneOf(values(StationKind)))
    town = fields.String(validate=AREA_CODE)
    organisation_id = fields.Integer(validate=ID)
    active = fields.Boolean()
    sort = sort_field("code", "name", "kind", default="code")


# --- organisations --------------------------------------------------------------------------


class OrganisationSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    name = Localized("name")
    names = AllLanguages("name")
    short_name = fields.String(dump_only=True)
    credit_code = fields.String(dump_only=True)
    legal_representative = fields.String(dump_only=True)
    contact_name = fields.String(dump_only=True)
    contact_phone = fields.String(dump_only=True)
    address = fields.String(dump_only=True)
    status = fields.String(dump_only=True, metadata={"enum": values(OrganisationStatus)})


class OrganisationCreateSchema(ma.Schema):
    name_zh = fields.String(required=True, validate=LONG_NAME)
    name_en = fields.String(load_default="", validate=validate.Length(max=200))
    short_name = fields.String(load_default="", validate=validate.Length(max=50))
    credit_code = fields.String(
        required=True,
        validate=validate.Regexp(r"^[0-9A-HJ-NPQRTUWXY]{18}$", error="18 digits or capitals (no I, O, S, V, Z)."),
        metadata={"description": "Unified social credit code (统一社会信用代码), GB 32100 check character"},
    )
    legal_representative = fields.String(load_default="", validate=validate.Length(max=50))
    contact_name = fields.String(load_default="", validate=validate.Length(max=50))
    contact_phone = fields.String(load_default="", validate=PHONE)
    address = fields.String(load_default="", validate=validate.Length(max=200))
    status = fields.String(load_default="active", validate=validate.OneOf(values(OrganisationStatus)))


class OrganisationUpdateSchema(ma.Schema):
    name_zh = fields.String(validate=LONG_NAME)
    name_en = fields.String(validate=validate.Length(max=200))
    short_name = fields.String(validate=validate.Length(max=50))
    legal_representative = fields.String(validate=validate.Length(max=50))
    contact_name = fields.String(validate=validate.Length(max=50))
    contact_phone = fields.String(validate=PHONE)
    address = fields.String(validate=validate.Length(max=200))
    status = fields.String(validate=validate.OneOf(values(OrganisationStatus)))


class OrganisationListArgs(ListArgs):
    status = fields.String(validate=validate.OneOf(values(OrganisationStatus)))
    sort = sort_field("name", "credit_code", default="name")


# --- contracts ------------------------------------------------------------------------------


class FundingSchema(ma.Schema):
    source = fields.String(required=True, validate=validate.OneOf(values(FundingSource)))
    funder = fields.String(load_default="", validate=validate.Length(max=200))
    amount_fen = fields.Integer(required=True, validate=validate.Range(min=1, max=10**12))


BILLING_STEP = validate.Range(min=1, max=60, error="From 1 to 60 minutes.")
BILLABLE_SHARE = validate.Range(min=0, max=1, error="A share from 0 to 1.")


class BillingTermsSchema(ma.Schema):
    """How a contract line pays a verified visit (each term left out keeps its value; a new line: per visit, or per
    minute for an hourly service, at a 15-minute step and a minimum of half the planned length)."""

    billing = fields.String(validate=validate.OneOf(values(Billing)), metadata={
        "description": "visit: the units one delivery counts for; minute: the verified minutes rounded to the step"})
    billing_step_min = fields.Integer(strict=True, validate=BILLING_STEP, metadata={
        "description": "Verified minutes are rounded to this step, half up (1-60)"})
    min_billable_share = fields.Float(validate=BILLABLE_SHARE, allow_nan=False, metadata={
        "description": "Below this share of the planned duration a visit is paid only once the bureau approves it "
                       "(0-1)"})


class ContractLineInSchema(BillingTermsSchema):
    service_type = fields.String(required=True, validate=validate.OneOf(SERVICE_TYPE_CODES))
    unit_price_fen = fields.Integer(required=True, validate=MONEY)
    contracted_quantity = fields.Integer(required=True, validate=validate.Range(min=1, max=10**7))


class ContractLineSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    service_type = fields.String(attribute="service_type.code", dump_only=True)
    service_type_name = Localized("name", attribute="service_type")
    unit = fields.String(attribute="service_type.unit", dump_only=True)
    unit_price_fen = fields.Integer(dump_only=True)
    contracted_quantity = fields.Integer(dump_only=True)
    value_fen = fields.Function(lambda line: line.unit_price_fen * line.contracted_quantity, dump_only=True,
                                metadata={"type": "integer"})
    billing = fields.String(dump_only=True, metadata={"enum": values(Billing)})
    billing_step_min = fields.Integer(dump_only=True)
    min_billable_share = fields.Float(dump_only=True)
    committed_units = fields.Float(dump_only=True, metadata={"description": "Held by accepted and active referrals"})
    offered_units = fields.Float(dump_only=True, metadata={"description": "Held by offers awaiting an answer"})
    remaining_units = fields.Float(dump_only=True, metadata={"description": "Left for new referrals"})


class ContractSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    code = fields.String(dump_only=True)
    name = Localized("name")
    names = AllLanguages("name")
    organisation_id = fields.Integer(dump_only=True)
    organisation_name = Localized("name", attribute="organisation")
    start_date = fields.Date(dump_only=True)
    end_date = fields.Date(dump_only=True)
    budget_fen = fields.Integer(dump_only=True)
    fundings = fields.List(fields.Nested(FundingSchema), dump_only=True)
    lines = fields.List(fields.Nested(ContractLineSchema), dump_only=True)
    areas = fields.Function(lambda c: [a.code for a in c.areas], dump_only=True,
                            metadata={"type": "array", "items": {"type": "string"}})
    eligible_classes = fields.List(fields.String(), dump_only=True)
    status = fields.String(dump_only=True, metadata={"enum": values(ContractStatus)})
    notes = fields.String(dump_only=True)


class ContractCreateSchema(ma.Schema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9-]{3,32}$"))
    name_zh = fields.String(required=True, validate=LONG_NAME)
    name_en = fields.String(load_default="", validate=validate.Length(max=200))
    organisation_id = fields.Integer(required=True, validate=ID)
    start_date = fields.Date(required=True)
    end_date = fields.Date(required=True)
    budget_fen = fields.Integer(required=True, validate=MONEY)
    fundings = fields.List(fields.Nested(FundingSchema), required=True, validate=validate.Length(min=1, max=20))
    lines = fields.List(fields.Nested(ContractLineInSchema), required=True, validate=validate.Length(min=1, max=50))
    areas = fields.List(fields.String(validate=AREA_CODE), required=True, validate=validate.Length(min=1, max=500))
    eligible_classes = fields.List(
        fields.String(validate=validate.OneOf(ASSISTANCE_CLASS_CODES)), required=True,
        validate=validate.Length(min=1, max=20),
    )
    status = fields.String(load_default="active", validate=validate.OneOf(values(ContractStatus)))
    notes = fields.String(load_default="", validate=validate.Length(max=2000))


class ContractUpdateSchema(ma.Schema):
    name_zh = fields.String(validate=LONG_NAME)
    name_en = fields.String(validate=validate.Length(max=200))
    start_date = fields.Date()
    end_date = fields.Date()
    budget_fen = fields.Integer(validate=MONEY)
    fundings = fields.List(fields.Nested(FundingSchema), validate=validate.Length(min=1, max=20))
    lines = fields.List(fields.Nested(ContractLineInSchema), validate=validate.Length(min=1, max=50))
    areas = fields.List(fields.String(validate=AREA_CODE), validate=validate.Length(min=1, max=500))
    eligible_classes = fields.List(fields.String(validate=validate.OneOf(ASSISTANCE_CLASS_CODES)),
                                   validate=validate.Length(min=1, max=20))
    status = fields.String(validate=validate.OneOf(values(ContractStatus)))
    notes = fields.String(validate=validate.Length(max=2000))


class ContractListArgs(ListArgs):
    organisation_id = fields.Integer(validate=ID)
    status = fields.String(validate=validate.OneOf(values(ContractStatus)))
    active_on = fields.Date(metadata={"description": "Contracts whose period includes this day"})
    service_type = fields.String(validate=validate.OneOf(SERVICE_TYPE_CODES))
    sort = sort_field("code", "name", "start_date", "end_date", "budget_fen", default="code")


# --- workers --------------------------------------------------------------------------------


class WorkerQualificationInSchema(ma.Schema):
    code = fields.String(required=True, validate=validate.OneOf(QUALIFICATION_CODES))
    certificate_no = fields.String(load_default="", validate=validate.Length(max=64))
    expires_on = fields.Date(load_default=None, allow_none=True)


class WorkerQualificationSchema(ma.Schema):
    code = fields.String(attribute="qualification.code", dump_only=True)
    name = Localized("name", attribute="qualification")
    certificate_no = fields.String(dump_only=True)
    expires_on = fields.Date(dump_only=True, allow_none=True)


AVAILABILITY = fields.Dict(
    keys=fields.String(validate=validate.OneOf(WEEKDAYS)),
    values=fields.List(fields.List(fields.String(validate=validate.Regexp(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")),
                                   validate=validate.Length(equal=2)), validate=validate.Length(max=6)),
    metadata={"description": 'Weekly availability, e.g. {"mon": [["08:00", "12:00"], ["13:30", "17:30"]]}'},
)


class WorkerSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    organisation_id = fields.Integer(dump_only=True)
    organisation_name = Localized("name", attribute="organisation")
    employee_no = fields.String(dump_only=True)
    name = fields.String(dump_only=True)
    gender = fields.String(dump_only=True, metadata={"enum": values(Gender)})
    phone = fields.String(attribute="phone_shown", dump_only=True, metadata={"description": "Masked for auditors"})
    start_station_id = fields.Integer(dump_only=True, allow_none=True)
    start_lat = fields.Float(dump_only=True)
    start_lon = fields.Float(dump_only=True)
    travel_mode = fields.String(dump_only=True, metadata={"enum": values(TravelMode)})
    availability = fields.Dict(dump_only=True)
    max_minutes_per_day = fields.Integer(dump_only=True)
    max_visits_per_day = fields.Integer(dump_only=True)
    languages = fields.List(fields.String(), dump_only=True)
    qualifications = fields.List(fields.Nested(WorkerQualificationSchema), dump_only=True)
    active = fields.Boolean(dump_only=True)


class WorkerCreateSchema(ma.Schema):
    organisation_id = fields.Integer(load_default=None, validate=ID,
                                     metadata={"description": "Defaults to the provider's own organisation"})
    employee_no = fields.String(required=True, validate=validate.Length(min=1, max=32))
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    gender = fields.String(required=True, validate=validate.OneOf(values(Gender)))
    phone = fields.String(load_default="", validate=PHONE)
    start_station_id = fields.Integer(load_default=None, allow_none=True, validate=ID)
    start_lat = fields.Float(load_default=None, allow_none=True, validate=LAT)
    start_lon = fields.Float(load_default=None, allow_none=True, validate=LON)
    travel_mode = fields.String(load_default="ebike", validate=validate.OneOf(values(TravelMode)))
    availability = AVAILABILITY
    max_minutes_per_day = fields.Integer(load_default=480, validate=validate.Range(min=30, max=720))
    max_visits_per_day = fields.Integer(load_default=10, validate=validate.Range(min=1, max=40))
    languages = fields.List(fields.String(validate=validate.Length(max=20)), load_default=list,
                            validate=validate.Length(max=10))
    qualifications = fields.List(fields.Nested(WorkerQualificationInSchema), load_default=list,
                                 validate=validate.Length(max=10))


class WorkerUpdateSchema(ma.Schema):
    employee_no = fields.String(validate=validate.Length(min=1, max=32))
    name = fields.String(validate=validate.Length(min=1, max=50))
    gender = fields.String(validate=validate.OneOf(values(Gender)))
    phone = fields.String(validate=PHONE)
    start_station_id = fields.Integer(allow_none=True, validate=ID)
    start_lat = fields.Float(allow_none=True, validate=LAT)
    start_lon = fields.Float(allow_none=True, validate=LON)
    travel_mode = fields.String(validate=validate.OneOf(values(TravelMode)))
    availability = AVAILABILITY
    max_minutes_per_day = fields.Integer(validate=validate.Range(min=30, max=720))
    max_visits_per_day = fields.Integer(validate=validate.Range(min=1, max=40))
    languages = fields.List(fields.String(validate=validate.Length(max=20)), validate=validate.Length(max=10))
    qualifications = fields.List(fields.Nested(WorkerQualificationInSchema), validate=validate.Length(max=10))
    active = fields.Boolean()


class WorkerListArgs(ListArgs):
    organisation_id = fields.Integer(validate=ID)
    qualification = fields.String(validate=validate.OneOf(QUALIFICATION_CODES))
    gender = fields.String(validate=validate.OneOf(values(Gender)))
    active = fields.Boolean()
    sort = sort_field("name", "employee_no", default="employee_no")


# --- recipients -----------------------------------------------------------------------------


class RecipientSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    id_number = fields.String(attribute="id_number_shown", dump_only=True,
                              metadata={"description": "Masked (3211**********123X) unless your role needs it"})
    gender = fields.String(dump_only=True, metadata={"enum": values(Gender)})
    birth_date = fields.Date(attribute="birth_date_shown", dump_only=True, allow_none=True, metadata={
        "description": "Null where the ID number is masked (with it, the birth date would rebuild the full number)"})
    age = fields.Integer(dump_only=True, metadata={"description": "Age in whole years today, for every role"})
    assistance_class = fields.String(attribute="assistance_class.code", dump_only=True)
    assistance_class_name = Localized("name", attribute="assistance_class")
    subclass = fields.String(dump_only=True, allow_none=True)
    class_valid_until = fields.Date(dump_only=True, allow_none=True)
    disability_grade = fields.Integer(dump_only=True, allow_none=True)
    lives_alone = fields.Boolean(dump_only=True)
    area = fields.String(attribute="area.code", dump_only=True)
    area_name = Localized("name", attribute="area")
    town = fields.String(attribute="town.code", dump_only=True)
    town_name = Localized("name", attribute="town")
    address = fields.String(dump_only=True)
    lat = fields.Float(dump_only=True)
    lon = fields.Float(dump_only=True)
    phone = fields.String(attribute="phone_shown", dump_only=True)
    family_carer_name = fields.String(dump_only=True)
    family_carer_phone = fields.String(attribute="family_carer_phone_shown", dump_only=True)
    carer_gender = fields.String(dump_only=True, metadata={"enum": values(CarerGender)})
    language = fields.String(dump_only=True)
    notes = fields.String(dump_only=True)
    status = fields.String(dump_only=True, metadata={"enum": values(RecipientStatus)})


class RecipientCreateSchema(ma.Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    id_number = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{17}[0-9X]$", error="17 digits and a digit or X."),
                              metadata={"description": "Resident ID number (GB 11643), checked"})
    gender = fields.String(load_default=None, validate=validate.OneOf(values(Gender)),
                           metadata={"description": "Derived from the ID number if omitted"})
    assistance_class = fields.String(required=True, validate=validate.OneOf(ASSISTANCE_CLASS_CODES))
    subclass = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))
    class_valid_until = fields.Date(load_default=None, allow_none=True)
    disability_grade = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1, max=4))
    lives_alone = fields.Boolean(load_default=False)
    area = fields.String(required=True, validate=AREA_CODE, metadata={"description": "Community (or town) code"})
    address = fields.String(required=True, validate=validate.Length(min=1, max=200))
    lat = fields.Float(required=True, validate=LAT)
    lon = fields.Float(required=True, validate=LON)
    phone = fields.String(load_default="", validate=PHONE)
    family_carer_name = fields.String(load_default="", validate=validate.Length(max=50))
    family_carer_phone = fields.String(load_default="", validate=PHONE)
    carer_gender = fields.String(load_default="any", validate=validate.OneOf(values(CarerGender)))
    language = fields.String(load_default="", validate=validate.Length(max=20))
    notes = fields.String(load_default="", validate=validate.Length(max=2000))


class RecipientUpdateSchema(ma.Schema):
    name = fields.String(validate=validate.Length(min=1, max=50))
    id_number = fields.String(validate=validate.Regexp(r"^[0-9]{17}[0-9X]$", error="17 digits and a digit or X."))
    assistance_class = fields.String(validate=validate.OneOf(ASSISTANCE_CLASS_CODES))
    subclass = fields.String(allow_none=True, validate=validate.Length(max=40))
    class_valid_until = fields.Date(allow_none=True)
    disability_grade = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=4))
    lives_alone = fields.Boolean()
    area = fields.String(validate=AREA_CODE)
    address = fields.String(validate=validate.Length(min=1, max=200))
    lat = fields.Float(validate=LAT)
    lon = fields.Float(validate=LON)
    phone = fields.String(validate=PHONE)
    family_carer_name = fields.String(validate=validate.Length(max=50))
    family_carer_phone = fields.String(validate=PHONE)
    carer_gender = fields.String(validate=validate.OneOf(values(CarerGender)))
    language = fields.String(validate=validate.Length(max=20))
    notes = fields.String(validate=validate.Length(max=2000))
    status = fields.String(validate=validate.OneOf(values(RecipientStatus)))


class RecipientListArgs(ListArgs):
    town = fields.String(validate=AREA_CODE)
    area = fields.String(validate=AREA_CODE)
    assistance_class = fields.String(validate=validate.OneOf(ASSISTANCE_CLASS_CODES))
    status = fields.String(validate=validate.OneOf(values(RecipientStatus)))
    has_unmet_need = fields.Boolean(metadata={"description": "Only recipients with an open need"})
    id_number = fields.String(validate=validate.Regexp(r"^[0-9]{17}[0-9X]$"),
                              metadata={"description": "Find by full ID number (managers and admins)"})
    sort = sort_field("name", "id", "birth_date", default="id")


# --- needs ----------------------------------------------------------------------------------

PREFERRED_DAYS = fields.List(fields.Integer(validate=validate.Range(min=1, max=7)), validate=validate.Length(max=7),
                             metadata={"description": "ISO weekdays, 1 = Monday … 7 = Sunday; empty: any day"})


class NeedSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    recipient_id = fields.Integer(dump_only=True)
    recipient_name = fields.String(attribute="recipient.name", dump_only=True)
    service_type = fields.String(attribute="service_type.code", dump_only=True)
    service_type_name = Localized("name", attribute="service_type")
    category = fields.String(attribute="service_type.category.code", dump_only=True)
    quantity = fields.Integer(dump_only=True)
    period = fields.String(dump_only=True, metadata={"enum": values(NeedPeriod)})
    preferred_days = fields.List(fields.Integer(), dump_only=True)
    window = fields.Function(lambda n: {"start": n.window_start.strftime(HHMM), "end": n.window_end.strftime(HHMM)},
                             dump_only=True, metadata={"type": "object"})
    duration_min = fields.Integer(dump_only=True)
    carers = fields.Integer(dump_only=True)
    priority = fields.String(dump_only=True, metadata={"enum": values(Priority)})
    start_date = fields.Date(dump_only=True)
    end_date = fields.Date(dump_only=True, allow_none=True)
    source = fields.String(dump_only=True, metadata={"enum": values(NeedSource)})
    status = fields.String(dump_only=True, metadata={"enum": values(NeedStatus)})
    notes = fields.String(dump_only=True)


class NeedCreateSchema(ma.Schema):
    recipient_id = fields.Integer(required=True, validate=ID)
    service_type = fields.String(required=True, validate=validate.OneOf(SERVICE_TYPE_CODES))
    quantity = fields.Integer(required=True, validate=validate.Range(min=1, max=93))
    period = fields.String(load_default="week", validate=validate.OneOf(values(NeedPeriod)))
    preferred_days = PREFERRED_DAYS
    window_start = fields.Time(format=HHMM, load_default=None, metadata={"description": "Default: the type's window"})
    window_end = fields.Time(format=HHMM, load_default=None)
    duration_min = fields.Integer(load_default=None, validate=validate.Range(min=5, max=1440),
                                  metadata={"description": "Default: the type's duration"})
    carers = fields.Integer(load_default=1, validate=validate.OneOf([1, 2]),
                            metadata={"description": "2: a double-up visit, two carers at once"})
    priority = fields.String(load_default="normal", validate=validate.OneOf(values(Priority)))
    start_date = fields.Date(required=True)
    end_date = fields.Date(load_default=None, allow_none=True)
    source = fields.String(load_default="assessment", validate=validate.OneOf(values(NeedSource)))
    notes = fields.String(load_default="", validate=validate.Length(max=2000))


class NeedUpdateSchema(ma.Schema):
    quantity = fields.Integer(validate=validate.Range(min=1, max=93))
    period = fields.String(validate=validate.OneOf(values(NeedPeriod)))
    preferred_days = PREFERRED_DAYS
    window_start = fields.Time(format=HHMM)
    window_end = fields.Time(format=HHMM)
    duration_min = fields.Integer(validate=validate.Range(min=5, max=1440))
    carers = fields.Integer(validate=validate.OneOf([1, 2]))
    priority = fields.String(validate=validate.OneOf(values(Priority)))
    start_date = fields.Date()
    end_date = fields.Date(allow_none=True)
    status = fields.String(validate=validate.OneOf(["open", "suspended", "closed"]),
                           metadata={"description": "Suspend, close or reopen; matching sets the other states"})
    notes = fields.String(validate=validate.Length(max=2000))


class NeedListArgs(ListArgs):
    recipient_id = fields.Integer(validate=ID)
    town = fields.String(validate=AREA_CODE)
    service_type = fields.String(validate=validate.OneOf(SERVICE_TYPE_CODES))
    category = fields.String(validate=validate.OneOf(CATEGORY_CODES))
    status = fields.String(validate=validate.OneOf(values(NeedStatus)))
    priority = fields.String(validate=validate.OneOf(values(Priority)))
    sort = sort_field("id", "start_date", "priority", default="id")
