"""Catalogue schemas: what the API dumps, the query parameters it takes, and the seed file's shape."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from servicehub.catalog.codes import CATEGORY_CODES, QUALIFICATION_CODES
from servicehub.catalog.models import DeliveryMode, Unit
from servicehub.i18n import AllLanguages, LanguageArgsSchema, Localized, current_language

HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="Expected a time as HH:MM.")


class QualificationSchema(ma.Schema):
    """A qualification, named in the request's language."""

    code = fields.String(dump_only=True)
    name = Localized("name")
    names = AllLanguages("name")


class BilingualItemSchema(ma.Schema):
    """A coded item stored with both names (a checklist task, a subclass), named in the request's language."""

    code = fields.String(dump_only=True)
    name = fields.Method("_name", dump_only=True)

    def _name(self, item):
        return item.get(f"name_{current_language()}") or item["name_zh"]


class WindowSchema(ma.Schema):
    """A local time window, HH:MM to HH:MM."""

    start = fields.Time(format="%H:%M")
    end = fields.Time(format="%H:%M")


class ServiceTypeSchema(ma.Schema):
    """A service type as the API shows it."""

    code = fields.String(dump_only=True, metadata={"example": "LC01"})
    name = Localized("name", metadata={"example": "助餐"})
    names = AllLanguages("name")
    description = Localized("description")
    category = fields.String(attribute="category.code", dump_only=True, metadata={"example": "LC"})
    category_name = Localized("name", attribute="category", dump_only=True)
    delivery_mode = fields.String(dump_only=True, metadata={"enum": [m.value for m in DeliveryMode]})
    default_duration_min = fields.Integer(dump_only=True)
    default_window = fields.Method("_window", dump_only=True, allow_none=True, metadata={"type": "object"})
    required_qualification = fields.Nested(QualificationSchema, dump_only=True, allow_none=True)
    unit = fields.String(dump_only=True, metadata={"enum": [m.value for m in Unit]})
    reference_price_fen = fields.Integer(
        dump_only=True, metadata={"description": "Reference unit price in CNY fen"}
    )
    same_gender_preferred = fields.Boolean(dump_only=True)
    checklist = fields.List(fields.Nested(BilingualItemSchema), dump_only=True)
    evv_short_share = fields.Float(dump_only=True, metadata={
        "description": "A visit shorter than this share of the planned duration is an exception"})
    evv_long_share = fields.Float(dump_only=True, metadata={
        "description": "A visit longer than this share of the planned duration is an exception"})
    max_duration_min = fields.Integer(dump_only=True, metadata={
        "description": "No correction may make a visit last longer"})
    active = fields.Boolean(dump_only=True)

    def _window(self, obj):
        if obj.window_start is None:
            return None
        return {"start": obj.window_start.strftime("%H:%M"), "end": obj.window_end.strftime("%H:%M")}


class CategorySchema(ma.Schema):
    """A category with its service types."""

    code = fields.String(dump_only=True, metadata={"example": "LC"})
    name = Localized("name", metadata={"example": "生活照料"})
    names = AllLanguages("name")
    description = Localized("description")
    types = fields.List(fields.Nested(ServiceTypeSchema), dump_only=True)


class AssistanceClassSchema(ma.Schema):
    """An assistance class and the service categories its members may receive."""

    code = fields.String(dump_only=True, metadata={"example": "dibao"})
    name = Localized("name", metadata={"example": "低保"})
    names = AllLanguages("name")
    categories = fields.List(fields.String(), dump_only=True)
    subclasses = fields.List(fields.Nested(BilingualItemSchema), dump_only=True)


class CategoryListArgsSchema(LanguageArgsSchema):
    """Query parameters of the category list."""

    include_inactive = fields.Boolean(load_default=False, metadata={"description": "Also list retired types"})


class ServiceTypeListArgsSchema(LanguageArgsSchema):
    """Query parameters of the service-type list."""

    category = fields.String(
        validate=validate.OneOf(CATEGORY_CODES), metadata={"description": "Category code"}
    )
    delivery_mode = fields.String(validate=validate.OneOf([m.value for m in DeliveryMode]))
    qualification = fields.String(
        validate=validate.OneOf(QUALIFICATION_CODES),
        metadata={"description": "Only types requiring this qualification"},
    )
    include_inactive = fields.Boolean(load_default=False, metadata={"description": "Also list retired types"})


# --- the seed file (seed_data/catalog.toml) -------------------------------------------------


class ChecklistSeedField(fields.Field):
    """A bilingual row in the seed file (checklist task, subclass): [code, 中文, English]."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, str) and v for v in value)):
            raise ma.ValidationError("Each item is [code, 中文, English].")
        return {"code": value[0], "name_zh": value[1], "name_en": value[2]}


class ServiceTypeSeedSchema(ma.Schema):
    """A service type in the seed file."""

    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{2}\d{2}$"))
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=100))
    name_en = fields.String(required=True, validate=validate.Length(min=1, max=100))
    description_zh = fields.String(load_default="")
    description_en = fields.String(load_default="")
    delivery_mode = fields.String(required=True, validate=validate.OneOf([m.value for m in DeliveryMode]))
    default_duration_min = fields.Integer(required=True, validate=validate.Range(min=1, max=1440))
    window = fields.List(fields.String(validate=HHMM), validate=validate.Length(equal=2), load_default=None)
    qualification = fields.String(load_default=None)
    unit = fields.String(required=True, validate=validate.OneOf([m.value for m in Unit]))
    reference_price_fen = fields.Integer(required=True, validate=validate.Range(min=0))
    same_gender_preferred = fields.Boolean(load_default=False)
    checklist = fields.List(ChecklistSeedField(), load_default=list)
    evv_short_share = fields.Float(load_default=0.5, validate=validate.Range(min=0, max=1))
    evv_long_share = fields.Float(load_default=2.0, validate=validate.Range(min=1, max=10))
    max_duration_min = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2880))
    active = fields.Boolean(load_default=True)

    @ma.post_load
    def _longest_stay(self, data, **kwargs):
        """Three times the usual length unless the file says otherwise, at least an hour and at most a day."""
        if data["max_duration_min"] is None:
            data["max_duration_min"] = min(1440, max(60, 3 * data["default_duration_min"]))
        return data

    @ma.validates_schema
    def _longest_not_shorter(self, data, **kwargs):
        longest = data.get("max_duration_min")
        if longest is not None and longest < data.get("default_duration_min", 0):
            raise ma.ValidationError("The longest stay is shorter than the usual one.", "max_duration_min")

    @ma.validates_schema
    def _window_fits(self, data, **kwargs):
        window = data.get("window")
        if window:
            start, end = window
            if start >= end:
                raise ma.ValidationError("The window must start before it ends.", "window")
            minutes = (int(end[:2]) * 60 + int(end[3:])) - (int(start[:2]) * 60 + int(start[3:]))
            if data["default_duration_min"] > minutes and data["delivery_mode"] != "centre":
                raise ma.ValidationError("The default duration does not fit in the window.", "window")


class CategorySeedSchema(ma.Schema):
    """A category in the seed file, with its types."""

    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{2}$"))
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=100))
    name_en = fields.String(required=True, validate=validate.Length(min=1, max=100))
    description_zh = fields.String(load_default="")
    description_en = fields.String(load_default="")
    types = fields.List(fields.Nested(ServiceTypeSeedSchema), required=True)


class QualificationSeedSchema(ma.Schema):
    """A qualification in the seed file."""

    code = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,31}$"))
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=100))
    name_en = fields.String(required=True, validate=validate.Length(min=1, max=100))


class AssistanceClassSeedSchema(ma.Schema):
    """An assistance class in the seed file."""

    code = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,31}$"))
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=100))
    name_en = fields.String(required=True, validate=validate.Length(min=1, max=100))
    categories = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    subclasses = fields.List(ChecklistSeedField(), load_default=list)


class CatalogSeedSchema(ma.Schema):
    """The whole seed file."""

    qualification = fields.List(fields.Nested(QualificationSeedSchema), load_default=list)
    assistance_class = fields.List(fields.Nested(AssistanceClassSeedSchema), load_default=list)
    category = fields.List(fields.Nested(CategorySeedSchema), required=True)

    @ma.validates_schema
    def _references(self, data, **kwargs):
        categories = {c["code"] for c in data.get("category", [])}
        for assistance_class in data.get("assistance_class", []):
            unknown = set(assistance_class["categories"]) - categories
            if unknown:
                raise ma.ValidationError(
                    f"Assistance class {assistance_class['code']} names unknown categories {sorted(unknown)}.",
                    "assistance_class",
                )
        qualifications = {q["code"] for q in data.get("qualification", [])}
        seen: set[str] = set()
        for category in data.get("category", []):
            for service_type in category["types"]:
                if service_type["code"] in seen:
                    raise ma.ValidationError(
                        f"Service type {service_type['code']} appears twice.", "category"
                    )
                seen.add(service_type["code"])
                if not service_type["code"].startswith(category["code"]):
                    raise ma.ValidationError(
                        f"Service type {service_type['code']} does not start with its category code {category['code']}.",
                        "category",
                    )
                if service_type["qualification"] and service_type["qualification"] not in qualifications:
                    raise ma.ValidationError(
                        f"Service type {service_type['code']} requires unknown qualification "
                        f"{service_type['qualification']!r}.",
                        "category",
                    )
