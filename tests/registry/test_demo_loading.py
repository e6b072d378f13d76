"""Loading the demo district into the database (idempotently, through the registry's rules), the demo
caregiver's worker, and the scale generator — on SQLite and PostgreSQL."""

import json

import pytest
from sqlalchemy import func, select

from servicehub.auth.models import AuditLog, User
from servicehub.errors import ValidationFailed
from servicehub.extensions import db
from servicehub.registry import demo
from servicehub.registry.cli import read_demo_files
from servicehub.registry.demo_loader import PARTS, load_demo
from servicehub.registry.models import Area, Contract, Need, Organisation, Recipient, Station, Worker
from tests.support import create_demo_accounts

MODELS = {"areas": Area, "organisations": Organisation, "stations": Station, "contracts": Contract,
          "workers": Worker, "recipients": Recipient, "needs": Need}


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def total(response) -> int:
    assert response.status_code == 200, response.get_json()
    return json.loads(response.headers["X-Pagination"])["total"]


def test_loading_the_demo_creates_everything_and_a_second_load_changes_nothing(catalog, app_ctx):
    files = read_demo_files()
    report = load_demo(files)
    for part in PARTS:
        assert report.counts[part]["created"] == len(files[part]), part
        assert count(MODELS[part]) == len(files[part]), part
    assert count(Recipient) == 147 and count(Organisation) == 8 and count(Contract) == 8
    again = load_demo(read_demo_files())
    assert not again.changed
    assert all(again.counts[part]["unchanged"] == len(files[part]) for part in PARTS)
    # the rows are what the services make of user input
    recipient = db.session.scalars(select(Recipient).order_by(Recipient.id)).first()
    number = files["recipients"][0]["id_number"]
    assert recipient.id_number_encrypted.startswith("v1:") and number not in recipient.id_number_hash
    assert recipient.id_number_masked == number[:4] + "*" * 10 + number[-4:]
    assert recipient.town_id == recipient.area.parent_id and recipient.birth_date.year < 2000
    contract = db.session.scalars(select(Contract).where(Contract.name_zh == "低保重残居家照护项目")).one()
    assert sum(f.amount_fen for f in contract.fundings) == contract.budget_fen
    assert {li.service_type.code for li in contract.lines} == {"LC02", "LC03", "LC06", "RC01"}
    assert len(contract.areas) == 5
    worker = db.session.scalars(select(Worker).where(Worker.start_station_id.isnot(None))).first()
    assert (worker.start_lat, worker.start_lon) == (worker.start_station.lat, worker.start_station.lon)
    audited = db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.entity_type == "recipients"))
    assert audited == 147
    # the test accounts link the caregiver as `servicehub demo users` does
    users = create_demo_accounts()
    assert db.session.get(Worker, users["caregiver"].worker_id).employee_no == "JJ001"


def test_a_bad_demo_row_is_refused_and_nothing_is_written(catalog, app_ctx):
    files = read_demo_files()
    files["workers"][0] = {**files["workers"][0], "phone": "0511-88886666"}  # workers need a mobile number
    with pytest.raises(ValidationFailed, match="worker"):
        load_demo(files)
    assert count(Area) == 0 and count(Station) == 0 and count(Contract) == 0


def test_seed_demo_twice_then_demo_users_link_the_caregiver(runner, app, catalog):
    first = runner.invoke(args=["seed", "demo"])
    assert first.exit_code == 0, first.output
    assert "recipients: 147 created" in first.output and "needs:" in first.output
    second = runner.invoke(args=["seed", "demo"])
    assert second.exit_code == 0, second.output
    lines = second.output.strip().splitlines()
    assert len(lines) == len(PARTS) and all(": 0 created, 0 updated" in line for line in lines)
    result = runner.invoke(args=["demo", "users"])
    assert result.exit_code == 0, result.output
    assert "caregiver is worker JJ001" in result.output
    with app.app_context():
        caregiver = db.session.scalars(select(User).where(User.username == "caregiver")).one()
        worker = db.session.get(Worker, caregiver.worker_id)
        assert worker.employee_no == "JJ001" and worker.organisation_id == caregiver.organisation_id
        assert worker.organisation.credit_code == demo.build_demo()["organisations"][0]["credit_code"]


def test_the_whole_demo_district_through_the_api(app, client, auth_headers):
    manager = auth_headers("manager")  # the reference parts and the accounts are there; add the rest
    with app.app_context():
        report = load_demo(read_demo_files())
    assert report.counts["stations"]["created"] == 0 and report.counts["recipients"]["created"] == 147
    files = read_demo_files()
    for path, expected in (("/recipients", 147), ("/needs", len(files["needs"])), ("/contracts", 8),
                           ("/workers", len(files["workers"])), ("/organisations", 8), ("/stations", 57)):
        assert total(client.get(f"/api/v1{path}", headers=manager)) == expected, path
    low_income = client.get("/api/v1/recipients", query_string={"assistance_class": "dibao"}, headers=manager)
    assert total(low_income) == 50
    respite = client.get("/api/v1/needs", query_string={"service_type": "RC01"}, headers=manager)
    assert total(respite) == 18
    dagang = total(client.get("/api/v1/recipients", headers=auth_headers("manager.dagang")))
    assert 0 < dagang < 147


# --- the scale generator ---------------------------------------------------------------------

SMALL = ["demo", "generate", "--recipients", "300", "--workers", "40", "--organisations", "5", "--seed", "3"]


def test_the_scale_generator_writes_valid_queryable_data(runner, app, client, auth_headers):
    result = runner.invoke(args=SMALL)
    assert result.exit_code == 0, result.output
    assert "300 recipients" in result.output and "40 workers" in result.output and " s" in result.output
    manager = auth_headers("manager")
    assert total(client.get("/api/v1/recipients", headers=manager)) == 300
    assert total(client.get("/api/v1/workers", headers=manager)) == 40
    assert total(client.get("/api/v1/contracts", query_string={"active_on": "2026-06-01"}, headers=manager)) == 8
    assert total(client.get("/api/v1/organisations", headers=manager)) == 8 + 5  # the demo's and the generated
    needs = total(client.get("/api/v1/needs", query_string={"status": "open"}, headers=manager))
    assert 500 <= needs <= 800
    page = client.get("/api/v1/recipients", query_string={"town": "321191001", "page_size": 5}, headers=manager)
    for recipient in page.get_json():
        shown = client.get(f"/api/v1/recipients/{recipient['id']}", headers=manager).get_json()
        assert shown["id_number"][:6] in {"321191", "321102", "321111", "321112"} and shown["town"] == "321191001"
        assert shown["gender"] in ("male", "female") and shown["area"].startswith("321191001")
        masked = client.get(f"/api/v1/recipients/{recipient['id']}", headers=auth_headers("auditor")).get_json()
        assert masked["id_number"] == shown["id_number"][:4] + "*" * 10 + shown["id_number"][-4:]
        found = client.get("/api/v1/recipients", query_string={"id_number": shown["id_number"]}, headers=manager)
        assert [r["id"] for r in found.get_json()] == [recipient["id"]]
    contract = client.get("/api/v1/contracts", query_string={"q": "ZJXQ-2026-S001"}, headers=manager).get_json()[0]
    assert sum(f["amount_fen"] for f in contract["fundings"]) == contract["budget_fen"]
    with app.app_context():
        event = db.session.scalars(select(AuditLog).where(AuditLog.action == "demo_generated")).one()
        assert event.changes["recipients"] == 300 and event.actor.startswith("cli:")


def test_the_scale_generator_refuses_a_database_with_other_recipients(runner, catalog):
    assert runner.invoke(args=SMALL).exit_code == 0
    again = runner.invoke(args=SMALL)
    assert again.exit_code == 1 and "already holds 300 recipients" in again.output


def test_the_scale_generator_sits_beside_the_demo_district(runner, app, catalog):
    assert runner.invoke(args=["seed", "demo"]).exit_code == 0
    result = runner.invoke(args=SMALL)
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert count(Recipient) == 147 + 300 and count(Organisation) == 8 + 5


def test_the_scale_generator_needs_the_catalogue(runner):
    result = runner.invoke(args=SMALL)
    assert result.exit_code == 1 and "seed catalog" in result.output
