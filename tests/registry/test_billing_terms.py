"""A contract line's billing terms (per visit or per verified minute, the rounding step, the minimum share of the
planned duration): through the API (422 naming the field for bad values, kept when a change leaves them out) and
on the contract page (shown to everyone who reads it, changed by district managers)."""

import re
from html import unescape

import pytest

from servicehub.auth.permissions import COMMAND_LINE
from servicehub.registry import services
from tests.matching.test_pages import flashes, messages, post
from tests.registry.test_api import CONTRACT, refused, world  # noqa: F401 - the fixture
from tests.registry.test_pages import field_errors, registry, signed_in  # noqa: F401 - the fixture

LC02 = {"service_type": "LC02", "unit_price_fen": 8000, "contracted_quantity": 100}
RH04 = {"service_type": "RH04", "unit_price_fen": 4000, "contracted_quantity": 10}


def terms(line: dict) -> tuple:
    return line["billing"], line["billing_step_min"], line["min_billable_share"]


def test_a_new_line_is_paid_per_visit_or_per_minute_for_hourly_services_and_says_so(client, world):  # noqa: F811 - the fixture imported above
    lines = {line["service_type"]: line for line in world["contract"]["lines"]}
    assert terms(lines["LC02"]) == ("visit", 15, 0.5)
    path = f"/api/v1/contracts/{world['contract']['id']}"
    changed = client.patch(path, json={"lines": [LC02, RH04]}, headers=world["manager"])
    assert changed.status_code == 200, changed.get_json()
    lines = {line["service_type"]: line for line in changed.get_json()["lines"]}
    assert terms(lines["RH04"]) == ("minute", 15, 0.5)


def test_billing_terms_are_set_and_kept_when_a_change_leaves_them_out(client, world):  # noqa: F811 - the fixture imported above
    path = f"/api/v1/contracts/{world['contract']['id']}"
    set_ = client.patch(path, json={"lines": [{**LC02, "billing": "minute", "billing_step_min": 10,
                                               "min_billable_share": 0.75}]}, headers=world["manager"])
    assert set_.status_code == 200, set_.get_json()
    assert terms(set_.get_json()["lines"][0]) == ("minute", 10, 0.75)
    repriced = client.patch(path, json={"lines": [{**LC02, "unit_price_fen": 9000}]}, headers=world["manager"])
    assert terms(repriced.get_json()["lines"][0]) == ("minute", 10, 0.75)
    assert repriced.get_json()["lines"][0]["unit_price_fen"] == 9000
    read = client.get(path, headers=world["manager"]).get_json()
    assert terms(read["lines"][0]) == ("minute", 10, 0.75)


@pytest.mark.parametrize(("bad", "field"), [
    ({"billing": "hour"}, "billing"),
    ({"billing_step_min": 0}, "billing_step_min"),
    ({"billing_step_min": 61}, "billing_step_min"),
    ({"billing_step_min": 7.5}, "billing_step_min"),
    ({"min_billable_share": -0.1}, "min_billable_share"),
    ({"min_billable_share": 1.5}, "min_billable_share"),
    ({"min_billable_share": "half"}, "min_billable_share"),
])
def test_bad_billing_terms_are_422_naming_the_field_and_change_nothing(client, world, bad, field):  # noqa: F811 - the fixture imported above
    path = f"/api/v1/contracts/{world['contract']['id']}"
    body = refused(client.patch(path, json={"lines": [{**LC02, **bad}]}, headers=world["manager"]), "lines")
    assert field in body["errors"]["lines"]["0"], body
    assert terms(client.get(path, headers=world["manager"]).get_json()["lines"][0]) == ("visit", 15, 0.5)
    created = client.post("/api/v1/contracts", json={**CONTRACT, "code": "T-2026-077", "lines": [{**LC02, **bad}]},
                          headers=world["manager"])
    assert field in refused(created, "lines")["errors"]["lines"]["0"]


def test_the_service_refuses_bad_terms_naming_the_field(app_ctx, demo):
    from tests.registry import factories as make

    contract = make.contract(make.organisation_ids()[0])
    line = contract.lines[0]
    for bad, field in (({"billing_step_min": 90}, "billing_step_min"), ({"min_billable_share": 2}, "min_billable_share"),
                       ({"billing": "day"}, "billing")):
        with pytest.raises(services.ValidationFailed) as refusal:
            services.update_line_billing(COMMAND_LINE, contract.id, line.id, bad)
        assert field in refusal.value.errors
    with pytest.raises(services.NotFound):
        services.update_line_billing(COMMAND_LINE, contract.id, 999_999, {"billing": "minute"})


# --- the contract page ----------------------------------------------------------------------


def line_row(html: str, code: str) -> str:
    return re.search(rf'<tr data-line="{code}".*?</tr>', html, re.S).group(0)


def test_everyone_reading_the_contract_sees_its_billing_terms_and_district_managers_change_them(app, registry):  # noqa: F811 - the fixture imported above
    url = f"/contracts/{registry.own_contract}"
    auditor = unescape(signed_in(app, "auditor").get(url).get_data(as_text=True))
    row = line_row(auditor, "LC02")
    assert 'data-billing="visit"' in row and 'data-min-share="0.5"' in row
    assert 'data-testid="billing-form"' not in auditor
    assert 'data-testid="billing-form"' not in signed_in(app, "manager.dagang").get(url).get_data(as_text=True)

    manager = signed_in(app, "manager")
    with app.app_context():
        line_id = next(li.id for li in services.get_contract(COMMAND_LINE, registry.own_contract).lines
                       if li.service_type.code == "LC02")
    page = manager.get(url).get_data(as_text=True)
    assert f'data-field="line-{line_id}-billing_step_min"' in page
    target = f"/contracts/{registry.own_contract}/lines/{line_id}/billing"
    saved = post(manager, target, **{f"line-{line_id}-billing": "minute", f"line-{line_id}-billing_step_min": "10",
                                     f"line-{line_id}-min_billable_percent": "40"})
    html = flashes(manager, saved)
    assert saved.headers["Location"].endswith(f"{url}#line-{line_id}")
    assert messages(html, "success") and "LC02" in messages(html, "success")[0]
    row = line_row(html, "LC02")
    assert 'data-billing="minute"' in row and 'data-step="10"' in row and 'data-min-share="0.4"' in row
    with app.app_context():
        line = next(li for li in services.get_contract(COMMAND_LINE, registry.own_contract).lines if li.id == line_id)
        assert (line.billing, line.billing_step_min, line.min_billable_share) == ("minute", 10, 0.4)

    bad = post(manager, target, **{f"line-{line_id}-billing": "minute", f"line-{line_id}-billing_step_min": "0",
                                   f"line-{line_id}-min_billable_percent": "140"})
    assert bad.status_code == 422
    shown = unescape(bad.get_data(as_text=True))
    assert field_errors(shown, f"line-{line_id}-billing_step_min") and \
        field_errors(shown, f"line-{line_id}-min_billable_percent")
    assert 'data-step="10"' in line_row(shown, "LC02")  # nothing changed

    assert post(signed_in(app, "auditor"), target, **{f"line-{line_id}-billing": "visit"}).status_code == 403
    assert post(signed_in(app, "manager.dagang"), target, **{f"line-{line_id}-billing": "visit",
                                                             f"line-{line_id}-billing_step_min": "15",
                                                             f"line-{line_id}-min_billable_percent": "50"}
                ).status_code == 403
    other_line = post(manager, f"/contracts/{registry.other_contract}/lines/{line_id}/billing",
                      **{f"line-{line_id}-billing": "visit"})
    assert other_line.status_code == 404


def test_the_demo_district_s_lines_are_billed_as_lines_registered_one_by_one(catalog, app_ctx):
    from sqlalchemy import select

    from servicehub.catalog.models import ServiceType
    from servicehub.extensions import db
    from servicehub.registry.cli import read_demo_files
    from servicehub.registry.demo_loader import load_demo
    from servicehub.registry.models import ContractLine

    load_demo(read_demo_files())

    rows = db.session.execute(select(ServiceType.unit, ContractLine.billing, ContractLine.billing_step_min)
                              .join(ServiceType, ServiceType.id == ContractLine.service_type_id)).all()
    assert rows
    assert all((billing == "minute") == (unit == "hour") and step == 15 for unit, billing, step in rows)
