"""Seeding the catalogue: complete, idempotent, updating, never deleting, and refusing bad files."""

import shutil
import tomllib

import pytest
from sqlalchemy import func, select

from servicehub.catalog import services
from servicehub.catalog.codes import CATALOG_FILE
from servicehub.catalog.models import Qualification, ServiceCategory, ServiceType
from servicehub.errors import ValidationFailed
from servicehub.extensions import db


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_seed_file_has_five_categories_and_twenty_one_types():
    data = services.read_catalog_file()
    assert [c["code"] for c in data["category"]] == ["LC", "RH", "PS", "RC", "CD"]
    assert sum(len(c["types"]) for c in data["category"]) == 21


def test_first_seed_creates_everything(app_ctx):
    report = services.seed_catalog(services.read_catalog_file())
    assert report.counts["categories"] == {"created": 5, "updated": 0, "unchanged": 0}
    assert report.counts["service_types"] == {"created": 21, "updated": 0, "unchanged": 0}
    assert (count(ServiceCategory), count(ServiceType), count(Qualification)) == (5, 21, 4)
    meal = services.get_service_type("LC01")
    assert (meal.window_start.isoformat(), meal.window_end.isoformat()) == ("10:30:00", "12:30:00")
    assert meal.unit == "meal" and meal.reference_price_fen == 1500
    assert services.get_service_type("RH01").required_qualification.code == "rehab_therapist"
    assert services.get_service_type("LC03").same_gender_preferred is True


def test_second_seed_changes_nothing(app_ctx):
    data = services.read_catalog_file()
    services.seed_catalog(data)
    before = {t.code: t.updated_at for t in db.session.scalars(select(ServiceType))}
    report = services.seed_catalog(data)
    assert not report.changed
    assert report.counts["service_types"]["unchanged"] == 21
    db.session.expire_all()
    assert {t.code: t.updated_at for t in db.session.scalars(select(ServiceType))} == before


def test_editing_a_value_updates_that_row_only(app_ctx, tmp_path):
    services.seed_catalog(services.read_catalog_file())
    edited = tmp_path / "catalog.toml"
    edited.write_text(
        CATALOG_FILE.read_text().replace("reference_price_fen = 1500\n", "reference_price_fen = 1600\n")
    )
    report = services.seed_catalog(services.read_catalog_file(edited))
    assert report.counts["service_types"] == {"created": 0, "updated": 1, "unchanged": 20}
    assert services.get_service_type("LC01").reference_price_fen == 1600


def test_active_false_retires_a_type_and_a_missing_type_is_kept(app_ctx, tmp_path):
    services.seed_catalog(services.read_catalog_file())
    text = CATALOG_FILE.read_text()
    text = text.replace('code = "LC04"', 'code = "LC04"\nactive = false')
    start = text.index('[[category.types]]\ncode = "LC06"')
    end = text.index("# ----", start)
    edited = tmp_path / "catalog.toml"
    edited.write_text(text[:start] + text[end:])
    services.seed_catalog(services.read_catalog_file(edited))
    assert services.get_service_type("LC04").active is False
    assert services.get_service_type("LC06").active is True  # absent from the file: kept as it was
    assert count(ServiceType) == 21


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('delivery_mode = "escort"', 'delivery_mode = "teleport"', "delivery_mode"),
        ('window = ["10:30", "12:30"]', 'window = ["12:30", "10:30"]', "window"),
        ('window = ["10:30", "12:30"]', 'window = ["10:30", "25:00"]', "window"),
        ("default_duration_min = 15\n", "default_duration_min = 0\n", "default_duration_min"),
        ("reference_price_fen = 1500\n", "reference_price_fen = -1\n", "reference_price_fen"),
        ('qualification = "doctor"', 'qualification = "wizard"', "category"),
        ('code = "LC02"', 'code = "LC01"', "category"),
        ('unit = "meal"', 'unit = "bushel"', "unit"),
    ],
)
def test_bad_seed_file_is_refused_with_the_field_named(tmp_path, old, new, field):
    text = CATALOG_FILE.read_text()
    assert old in text
    bad = tmp_path / "catalog.toml"
    bad.write_text(text.replace(old, new, 1))
    with pytest.raises(ValidationFailed) as err:
        services.read_catalog_file(bad)
    assert field in repr(err.value.errors)


def test_unreadable_seed_file_is_refused(tmp_path):
    bad = tmp_path / "catalog.toml"
    bad.write_text("[[category]\nnot toml")
    with pytest.raises(ValidationFailed, match="Cannot read"):
        services.read_catalog_file(bad)


def test_seed_cli_is_idempotent(runner):
    first = runner.invoke(args=["seed", "catalog"])
    assert first.exit_code == 0, first.output
    assert "service_types: 21 created" in first.output
    second = runner.invoke(args=["seed", "catalog"])
    assert "service_types: 0 created, 0 updated, 21 unchanged" in second.output


def test_seed_cli_rejects_a_bad_file_and_writes_nothing(runner, app, tmp_path):
    bad = tmp_path / "catalog.toml"
    shutil.copy(CATALOG_FILE, bad)
    bad.write_text(bad.read_text().replace('unit = "meal"', 'unit = "bushel"'))
    result = runner.invoke(args=["seed", "catalog", "--file", str(bad)])
    assert result.exit_code == 1
    assert "unit" in result.output and "Traceback" not in result.output
    with app.app_context():
        assert count(ServiceType) == 0


def test_deactivate_and_activate_cli(runner, catalog):
    assert runner.invoke(args=["catalog", "deactivate", "LC05"]).exit_code == 0
    with catalog.app_context():
        assert services.get_service_type("LC05").active is False
    assert runner.invoke(args=["catalog", "activate", "LC05"]).exit_code == 0
    unknown = runner.invoke(args=["catalog", "deactivate", "ZZ99"])
    assert unknown.exit_code == 1 and "ZZ99" in unknown.output


def test_seed_codes_match_the_file():
    from servicehub.catalog.codes import CATEGORY_CODES, QUALIFICATION_CODES

    raw = tomllib.loads(CATALOG_FILE.read_text())
    assert [c["code"] for c in raw["category"]] == CATEGORY_CODES
    assert set(QUALIFICATION_CODES) == {"rehab_therapist", "doctor", "counsellor", "special_education"}
