"""Catalogue use cases: seed from the data file, list and look up service types, retire a type."""

from __future__ import annotations

import tomllib
from datetime import time
from pathlib import Path

import marshmallow as ma
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from servicehub.catalog.codes import CATALOG_FILE
from servicehub.catalog.models import AssistanceClass, Qualification, ServiceCategory, ServiceType
from servicehub.catalog.schemas import CatalogSeedSchema
from servicehub.database import SeedReport, paginate, upsert
from servicehub.errors import N_, NotFound, ValidationFailed
from servicehub.extensions import db


def read_catalog_file(path: Path = CATALOG_FILE) -> dict:
    """Read and validate the catalogue seed file; raises ValidationFailed naming the bad entries."""
    try:
        with Path(path).open("rb") as fh:
            raw = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValidationFailed(f"Cannot read catalogue file {path}: {exc}") from exc
    try:
        return CatalogSeedSchema().load(raw)
    except ma.ValidationError as exc:
        raise ValidationFailed(f"Catalogue file {path} is invalid.", exc.messages) from exc


def _hhmm(value: str | None) -> time | None:
    return time.fromisoformat(value) if value else None


def seed_catalog(data: dict) -> SeedReport:
    """Create or update categories, qualifications and types from validated seed data, in one transaction.

    Idempotent: a second run with the same data changes nothing. Nothing is ever deleted;
    a type missing from the data keeps its row (retire it with `active = false`).
    """
    report = SeedReport()
    session = db.session
    qualifications: dict[str, Qualification] = {}
    for item in data["qualification"]:
        row, outcome = upsert(
            session, Qualification, {"code": item["code"]}, {k: item[k] for k in ("name_zh", "name_en")}
        )
        qualifications[item["code"]] = row
        report.add("qualifications", outcome)
    session.flush()
    for order, item in enumerate(data["assistance_class"], start=1):
        values = {
            "name_zh": item["name_zh"],
            "name_en": item["name_en"],
            "categories": item["categories"],
            "subclasses": item["subclasses"],
            "sort_order": order,
        }
        _, outcome = upsert(session, AssistanceClass, {"code": item["code"]}, values)
        report.add("assistance_classes", outcome)
    for c_order, category in enumerate(data["category"], start=1):
        values = {k: category[k] for k in ("name_zh", "name_en", "description_zh", "description_en")}
        cat_row, outcome = upsert(
            session, ServiceCategory, {"code": category["code"]}, {**values, "sort_order": c_order}
        )
        report.add("categories", outcome)
        session.flush()
        for t_order, item in enumerate(category["types"], start=1):
            window = item["window"] or [None, None]
            qualification = qualifications.get(item["qualification"]) if item["qualification"] else None
            values = {
                "category_id": cat_row.id,
                "name_zh": item["name_zh"],
                "name_en": item["name_en"],
                "description_zh": item["description_zh"],
                "description_en": item["description_en"],
                "delivery_mode": item["delivery_mode"],
                "default_duration_min": item["default_duration_min"],
                "window_start": _hhmm(window[0]),
                "window_end": _hhmm(window[1]),
                "required_qualification_id": qualification.id if qualification else None,
                "unit": item["unit"],
                "reference_price_fen": item["reference_price_fen"],
                "same_gender_preferred": item["same_gender_preferred"],
                "checklist": item["checklist"],
                "evv_short_share": item["evv_short_share"],
                "evv_long_share": item["evv_long_share"],
                "max_duration_min": item["max_duration_min"],
                "active": item["active"],
                "sort_order": c_order * 100 + t_order,
            }
            _, outcome = upsert(session, ServiceType, {"code": item["code"]}, values)
            report.add("service_types", outcome)
    session.commit()
    return report


def list_categories(include_inactive: bool = False) -> list[ServiceCategory]:
    """All categories in catalogue order, each with its (active, unless asked) types."""
    criteria = (
        ServiceCategory.types
        if include_inactive
        else ServiceCategory.types.and_(ServiceType.active.is_(True))
    )
    stmt = (
        select(ServiceCategory)
        .options(
            selectinload(criteria).options(
                selectinload(ServiceType.category), selectinload(ServiceType.required_qualification)
            )
        )
        .order_by(ServiceCategory.sort_order)
        .execution_options(populate_existing=True)
    )
    return list(db.session.scalars(stmt))


def list_service_types(
    *,
    category: str | None = None,
    delivery_mode: str | None = None,
    qualification: str | None = None,
    include_inactive: bool = False,
    page: int = 1,
    page_size: int = 50,
) -> tuple[list[ServiceType], int]:
    """Service types in catalogue order, filtered: (page of types, total)."""
    stmt = select(ServiceType).options(
        selectinload(ServiceType.category), selectinload(ServiceType.required_qualification)
    )
    if category:
        stmt = stmt.join(ServiceType.category).where(ServiceCategory.code == category)
    if delivery_mode:
        stmt = stmt.where(ServiceType.delivery_mode == delivery_mode)
    if qualification:
        stmt = stmt.join(ServiceType.required_qualification).where(Qualification.code == qualification)
    if not include_inactive:
        stmt = stmt.where(ServiceType.active.is_(True))
    return paginate(db.session, stmt.order_by(ServiceType.sort_order, ServiceType.code), page, page_size)


def get_service_type(code: str) -> ServiceType:
    """The service type with this code, active or retired; NotFound otherwise."""
    service_type = db.session.scalars(select(ServiceType).where(ServiceType.code == code)).one_or_none()
    if service_type is None:
        raise NotFound(N_("No service type with code '%(code)s'.", code=code), {"code": [f"Unknown service type {code!r}."]})
    return service_type


def list_qualifications() -> list[Qualification]:
    """Every qualification a service type may require."""
    return list(db.session.scalars(select(Qualification).order_by(Qualification.code)))


def set_service_type_active(code: str, active: bool) -> ServiceType:
    """Retire (or bring back) a service type; types are never deleted."""
    service_type = get_service_type(code)
    service_type.active = active
    db.session.commit()
    return service_type


def list_assistance_classes() -> list[AssistanceClass]:
    """The assistance classes in catalogue order."""
    return list(db.session.scalars(select(AssistanceClass).order_by(AssistanceClass.sort_order)))


def get_assistance_class(code: str) -> AssistanceClass | None:
    """The assistance class with this code, or None."""
    return db.session.scalars(select(AssistanceClass).where(AssistanceClass.code == code)).one_or_none()
