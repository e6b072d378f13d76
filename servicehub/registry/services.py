"""Registry use cases (areas and organisations so far)."""

from __future__ import annotations

from sqlalchemy import select

from servicehub.database import SeedReport, upsert
from servicehub.extensions import db
from servicehub.registry.models import Area, AreaLevel, Organisation, OrganisationStatus


def list_towns() -> list[Area]:
    """The district's active towns and streets (镇/街道), by code."""
    return list(
        db.session.scalars(select(Area).where(Area.level == AreaLevel.TOWN, Area.active.is_(True)).order_by(Area.code))
    )


def list_active_organisations() -> list[Organisation]:
    """Organisations that may be given work, by name."""
    return list(
        db.session.scalars(
            select(Organisation).where(Organisation.status == OrganisationStatus.ACTIVE).order_by(Organisation.name_zh)
        )
    )


def list_active_organisations_by_credit_code() -> list[Organisation]:
    """Active organisations in credit-code order (stable: the demo's first is the home-care centre)."""
    return list(
        db.session.scalars(
            select(Organisation)
            .where(Organisation.status == OrganisationStatus.ACTIVE)
            .order_by(Organisation.credit_code)
        )
    )


def load_demo_areas(areas: list[dict], report) -> None:
    """Create or update the demo district's areas (parents before children)."""
    by_code: dict[str, Area] = {}
    for item in areas:
        parent = by_code.get(item["parent"]) if item["parent"] else None
        if item["parent"] and parent is None:
            parent = db.session.scalars(select(Area).where(Area.code == item["parent"])).one()
        row, outcome = upsert(
            db.session,
            Area,
            {"code": item["code"]},
            {
                "name_zh": item["name_zh"],
                "name_en": item["name_en"],
                "level": item["level"],
                "parent_id": parent.id if parent else None,
                "centroid_lat": item["lat"],
                "centroid_lon": item["lon"],
            },
        )
        db.session.flush()
        by_code[item["code"]] = row
        report.add("areas", outcome)


def load_demo_organisations(organisations: list[dict], report) -> None:
    """Create or update the demo organisations, keyed by credit code."""
    for item in organisations:
        _, outcome = upsert(
            db.session, Organisation, {"credit_code": item["credit_code"]},
            {k: v for k, v in item.items() if k != "credit_code"},
        )
        report.add("organisations", outcome)


def load_demo(data: dict):
    """Load the demo district (as built by registry.demo) in one transaction; idempotent."""
    report = SeedReport()
    load_demo_areas(data["areas"], report)
    load_demo_organisations(data["organisations"], report)
    db.session.commit()
    return report
