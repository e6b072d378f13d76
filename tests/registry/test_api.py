"""The registry API: every validation rule answers 422 naming the field; scoping and masking hold."""

import pytest
from sqlalchemy import func, select, text

from servicehub.extensions import db
from servicehub.registry.identifiers import id_number_check_digit
from servicehub.registry.models import Recipient

COMMUNITY = "321191001099"
OTHER_TOWN_COMMUNITY = "321191002099"


def valid_id(birth: str = "19500101", serial: str = "002", region: str = "321191") -> str:
    first17 = region + birth + serial
    return first17 + id_number_check_digit(first17)


@pytest.fixture
def world(client, demo, auth_headers):
    """A community in each of two towns, a station, a contract, a worker, a recipient with a need."""
    m = auth_headers("manager")

    def post(path, body, headers=m):
        response = client.post(f"/api/v1{path}", json=body, headers=headers)
        assert response.status_code == 201, (path, response.get_json())
        return response.get_json()

    post("/areas", {"code": COMMUNITY, "name_zh": "港南社区", "level": "community", "parent": "321191001",
                    "lat": 32.20, "lon": 119.68})
    post("/areas", {"code": OTHER_TOWN_COMMUNITY, "name_zh": "丁卯社区", "level": "community", "parent": "321191002",
                    "lat": 32.155, "lon": 119.52})
    station = post("/stations", {"code": "HC-T01", "name_zh": "港南居家养老服务中心", "kind": "home_care_centre",
                                 "area": COMMUNITY, "organisation_id": 1, "lat": 32.201, "lon": 119.681})
    contract = post("/contracts", CONTRACT)
    worker = post("/workers", {**WORKER, "start_station_id": station["id"]})
    recipient = post("/recipients", {**RECIPIENT})
    other_town = post("/recipients", {**RECIPIENT, "name": "丁大爷", "id_number": valid_id("19451010", "013"),
                                      "area": OTHER_TOWN_COMMUNITY, "lat": 32.156, "lon": 119.521})
    need = post("/needs", {"recipient_id": recipient["id"], "service_type": "LC02", "quantity": 1,
                           "preferred_days": [2], "start_date": "2026-12-01"})
    return {"post": post, "station": station, "contract": contract, "worker": worker, "recipient": recipient,
            "other_town": other_town, "need": need, "manager": m}


CONTRACT = {
    "code": "T-2026-001", "name_zh": "测试居家照护项目", "organisation_id": 1,
    "start_date": "2026-01-01", "end_date": "2026-12-31", "budget_fen": 1_000_000,
    "fundings": [{"source": "government", "amount_fen": 700_000}, {"source": "charity", "amount_fen": 300_000}],
    "lines": [{"service_type": "LC02", "unit_price_fen": 8000, "contracted_quantity": 100}],
    "areas": ["321191001"], "eligible_classes": ["dibao"],
}
WORKER = {"organisation_id": 1, "employee_no": "T001", "name": "张敏", "gender": "female", "phone": "13812345678",
          "availability": {"mon": [["08:00", "12:00"]]},
          "qualifications": [{"code": "rehab_therapist", "expires_on": "2027-06-30"}]}
RECIPIENT = {"name": "王秀英", "id_number": valid_id("19491231", "002"), "assistance_class": "dibao",
             "subclass": "dibao_severe_disability", "area": COMMUNITY, "address": "港南路1号", "lat": 32.2,
             "lon": 119.68, "phone": "13912345678", "family_carer_phone": "0511-88886666"}


def refused(response, field, status=422):
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["code"] in {"validation_error", "conflict"}
    assert field in body.get("errors", {}), body
    return body


# --- every validation rule, through the API --------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id_number": "110105194912310021"}, "id_number"),  # wrong check digit
        ({"id_number": valid_id("19491332")}, "id_number"),  # 13th month
        ({"id_number": valid_id("18800101")}, "id_number"),  # implausible birth date
        ({"id_number": valid_id("21000101")}, "id_number"),  # born in the future
        ({"id_number": "1101051949123100"}, "id_number"),  # too short
        ({"gender": "male"}, "gender"),  # the ID number says female
        ({"phone": "12345678901"}, "phone"),  # not a mobile or landline
        ({"family_carer_phone": "999"}, "family_carer_phone"),
        ({"lat": 31.23, "lon": 121.47}, "lat"),  # Shanghai: outside the district
        ({"lat": 95}, "lat"),  # not a latitude at all
        ({"assistance_class": "royalty"}, "assistance_class"),
        ({"subclass": "orphan"}, "subclass"),  # a subclass of another class
        ({"area": "999999999999"}, "area"),
        ({"area": "321191"}, "area"),  # the district is not a place to live
        ({"name": ""}, "name"),
    ],
)
def test_bad_recipients_are_422_naming_the_field(client, world, changes, field):
    body = {**RECIPIENT, "id_number": valid_id("19400101", "022"), **changes}  # a woman, like RECIPIENT
    refused(client.post("/api/v1/recipients", json=body, headers=world["manager"]), field)


def test_a_registered_id_number_is_a_409_duplicate_not_a_merge(client, app, world):
    body = refused(client.post("/api/v1/recipients", json=RECIPIENT, headers=world["manager"]), "id_number", 409)
    assert str(world["recipient"]["id"]) in body["errors"]["id_number"][0]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Recipient)) == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"service_type": "CD01"}, "service_type"),  # a child's service for a dibao recipient
        ({"window_start": "10:00", "window_end": "11:00"}, "duration_min"),  # 120 minutes of cleaning
        ({"window_start": "12:00", "window_end": "10:00"}, "window_start"),
        ({"end_date": "2026-11-01"}, "end_date"),
        ({"quantity": 3, "preferred_days": [1, 2]}, "quantity"),
        ({"preferred_days": [8]}, "preferred_days"),
        ({"quantity": 0}, "quantity"),
        ({"service_type": "XX99"}, "service_type"),
        ({"priority": "whenever"}, "priority"),
        ({"start_date": "yesterday"}, "start_date"),
    ],
)
def test_bad_needs_are_422_naming_the_field(client, world, changes, field):
    body = {"recipient_id": world["recipient"]["id"], "service_type": "LC02", "quantity": 1,
            "start_date": "2026-12-01", **changes}
    refused(client.post("/api/v1/needs", json=body, headers=world["manager"]), field)


def test_a_retired_service_type_cannot_be_needed_or_contracted(client, app, world):
    from servicehub.catalog import services as catalog

    with app.app_context():
        catalog.set_service_type_active("LC06", False)
    body = {"recipient_id": world["recipient"]["id"], "service_type": "LC06", "quantity": 1, "start_date": "2026-12-01"}
    refused(client.post("/api/v1/needs", json=body, headers=world["manager"]), "service_type")
    contract = {**CONTRACT, "code": "T-2026-009", "lines": [{"service_type": "LC06", "unit_price_fen": 1, "contracted_quantity": 1}]}
    refused(client.post("/api/v1/contracts", json=contract, headers=world["manager"]), "lines.0.service_type")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"budget_fen": 1_000_001}, "fundings"),  # the funding no longer adds up
        ({"lines": [{"service_type": "LC02", "unit_price_fen": 8000, "contracted_quantity": 200}]}, "lines"),
        ({"lines": [{"service_type": "LC02", "unit_price_fen": 1, "contracted_quantity": 1},
                    {"service_type": "LC02", "unit_price_fen": 1, "contracted_quantity": 1}]}, "lines"),
        ({"end_date": "2025-12-31"}, "end_date"),
        ({"eligible_classes": ["royalty"]}, "eligible_classes"),
        ({"areas": ["000000000"]}, "areas"),
        ({"fundings": [{"source": "lottery", "amount_fen": 1_000_000}]}, "fundings"),
        ({"organisation_id": 999}, "organisation_id"),
    ],
)
def test_bad_contracts_are_422_naming_the_field(client, world, changes, field):
    refused(client.post("/api/v1/contracts", json={**CONTRACT, "code": "T-2026-002", **changes},
                        headers=world["manager"]), field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"credit_code": "52321191MJ0001001B"}, "credit_code"),  # wrong check character
        ({"credit_code": "52321191MJ00010O1A"}, "credit_code"),  # an O is not allowed
        ({"credit_code": "5232119"}, "credit_code"),
        ({"contact_phone": "12"}, "contact_phone"),
    ],
)
def test_bad_organisations_are_422_naming_the_field(client, world, body, field):
    from servicehub.registry.demo import credit_code

    payload = {"name_zh": "新组织", "credit_code": credit_code("321191", 99_001), **body}
    refused(client.post("/api/v1/organisations", json=payload, headers=world["manager"]), field)


def test_a_valid_credit_code_registers_and_a_second_time_conflicts(client, world):
    from servicehub.registry.demo import credit_code

    payload = {"name_zh": "新组织", "credit_code": credit_code("321191", 99_001), "contact_phone": "0511-85551234"}
    assert client.post("/api/v1/organisations", json=payload, headers=world["manager"]).status_code == 201
    refused(client.post("/api/v1/organisations", json=payload, headers=world["manager"]), "credit_code", 409)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"availability": {"mon": [["12:00", "08:00"]]}}, "availability"),
        ({"availability": {"funday": [["08:00", "12:00"]]}}, "availability"),
        ({"phone": "0511-88886666"}, "phone"),  # a worker is reached on a mobile
        ({"start_station_id": None, "start_lat": 30.0, "start_lon": 119.6}, "start_lat"),
        ({"qualifications": [{"code": "astronaut"}]}, "qualifications"),
        ({"max_minutes_per_day": 2000}, "max_minutes_per_day"),
        ({"gender": "other"}, "gender"),
        ({"employee_no": "T001"}, "employee_no"),  # taken
    ],
)
def test_bad_workers_are_422_naming_the_field(client, world, changes, field):
    body = {**WORKER, "employee_no": "T002", "start_station_id": world["station"]["id"], **changes}
    response = client.post("/api/v1/workers", json=body, headers=world["manager"])
    refused(response, field, 409 if field == "employee_no" else 422)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/areas", {"code": "321191001", "name_zh": "x", "level": "community", "parent": "321191001",
                    "lat": 32.2, "lon": 119.6}, "code"),  # a community code has 12 digits
        ("/areas", {"code": "321191002098", "name_zh": "x", "level": "community", "parent": "321191001",
                    "lat": 32.2, "lon": 119.6}, "code"),  # does not extend its parent's code
        ("/areas", {"code": "321191009", "name_zh": "x", "level": "town", "lat": 32.2, "lon": 119.6}, "parent"),
        ("/stations", {"code": "X-1", "name_zh": "x", "kind": "spaceport", "area": COMMUNITY, "lat": 32.2,
                       "lon": 119.6}, "kind"),
        ("/stations", {"code": "X-1", "name_zh": "x", "kind": "home_care_centre", "area": COMMUNITY, "lat": 39.9,
                       "lon": 116.4}, "lat"),
    ],
)
def test_bad_areas_and_stations_are_422_naming_the_field(client, world, path, body, field):
    refused(client.post(f"/api/v1{path}", json=body, headers=world["manager"]), field)


# --- reading: filters, sort, pagination ------------------------------------------------------


def test_lists_filter_sort_and_paginate(client, world):
    m = world["manager"]
    towns = client.get("/api/v1/areas", query_string={"level": "town", "sort": "-code", "page_size": 2}, headers=m)
    assert [a["code"] for a in towns.get_json()] == ["321191005", "321191004"]
    assert '"total": 5' in towns.headers["X-Pagination"]
    unmet = client.get("/api/v1/recipients", query_string={"has_unmet_need": "true"}, headers=m).get_json()
    assert [r["id"] for r in unmet] == [world["recipient"]["id"]]
    met = client.get("/api/v1/recipients", query_string={"has_unmet_need": "false"}, headers=m).get_json()
    assert [r["id"] for r in met] == [world["other_town"]["id"]]
    by_town = client.get("/api/v1/recipients", query_string={"town": "321191002"}, headers=m).get_json()
    assert [r["name"] for r in by_town] == ["丁大爷"]
    by_qualification = client.get("/api/v1/workers", query_string={"qualification": "rehab_therapist"}, headers=m)
    assert [w["employee_no"] for w in by_qualification.get_json()] == ["T001"]
    contracts = client.get("/api/v1/contracts", query_string={"active_on": "2026-06-01", "service_type": "LC02"},
                           headers=m).get_json()
    assert [c["code"] for c in contracts] == ["T-2026-001"]
    assert client.get("/api/v1/contracts", query_string={"active_on": "2027-06-01"}, headers=m).get_json() == []
    needs = client.get("/api/v1/needs", query_string={"category": "LC", "status": "open"}, headers=m).get_json()
    assert [n["id"] for n in needs] == [world["need"]["id"]]


@pytest.mark.parametrize("query", [{"sort": "password"}, {"level": "planet"}, {"page": 0}, {"q": ""}])
def test_bad_list_parameters_are_422(client, world, query):
    assert client.get("/api/v1/areas", query_string=query, headers=world["manager"]).status_code == 422


# --- privacy and scoping ---------------------------------------------------------------------


def _shown_id(client, headers, recipient_id):
    response = client.get(f"/api/v1/recipients/{recipient_id}", headers=headers)
    return response.status_code, (response.get_json() or {}).get("id_number")


def test_id_numbers_are_masked_unless_the_role_needs_them(client, world, auth_headers):
    rid, full = world["recipient"]["id"], RECIPIENT["id_number"]
    masked = full[:4] + "*" * 10 + full[-4:]
    assert _shown_id(client, auth_headers("admin"), rid) == (200, full)
    assert _shown_id(client, auth_headers("manager"), rid) == (200, full)  # district manager: every town
    assert _shown_id(client, auth_headers("manager.dagang"), rid) == (200, full)  # the recipient's town
    assert _shown_id(client, auth_headers("auditor"), rid) == (200, masked)
    auditor_view = client.get(f"/api/v1/recipients/{rid}", headers=auth_headers("auditor")).get_json()
    assert auditor_view["phone"] == "139****5678"


def test_a_town_manager_sees_only_their_town(client, world, auth_headers):
    dagang = auth_headers("manager.dagang")
    assert [r["id"] for r in client.get("/api/v1/recipients", headers=dagang).get_json()] == [world["recipient"]["id"]]
    assert _shown_id(client, dagang, world["other_town"]["id"])[0] == 404
    body = {**RECIPIENT, "id_number": valid_id("19300101", "031"), "area": OTHER_TOWN_COMMUNITY, "lat": 32.156,
            "lon": 119.521}
    assert client.post("/api/v1/recipients", json=body, headers=dagang).status_code == 403
    need = {"recipient_id": world["other_town"]["id"], "service_type": "LC02", "quantity": 1, "start_date": "2026-12-01"}
    assert client.post("/api/v1/needs", json=need, headers=dagang).status_code == 404
    assert client.post("/api/v1/contracts", json={**CONTRACT, "code": "T-X"}, headers=dagang).status_code == 403


def test_providers_see_their_own_organisation_and_no_unreferred_recipients(client, world, auth_headers):
    provider = auth_headers("provider")  # organisation 1
    assert [o["id"] for o in client.get("/api/v1/organisations", headers=provider).get_json()] == [1]
    assert client.get("/api/v1/organisations/2", headers=provider).status_code == 404
    assert [w["employee_no"] for w in client.get("/api/v1/workers", headers=provider).get_json()] == ["T001"]
    assert client.get("/api/v1/recipients", headers=provider).get_json() == []
    assert client.get(f"/api/v1/recipients/{world['recipient']['id']}", headers=provider).status_code == 404
    assert client.get("/api/v1/needs", headers=provider).get_json() == []
    # a provider manages its own workers, not anyone else's, and no contracts
    own = client.post("/api/v1/workers", json={**WORKER, "organisation_id": None, "employee_no": "P01",
                                                "start_station_id": world["station"]["id"]}, headers=provider)
    assert own.status_code == 201 and own.get_json()["organisation_id"] == 1
    other = client.post("/api/v1/workers", json={**WORKER, "organisation_id": 2, "employee_no": "P02",
                                                  "start_station_id": world["station"]["id"]}, headers=provider)
    assert other.status_code == 403
    assert client.post("/api/v1/contracts", json={**CONTRACT, "code": "T-P"}, headers=provider).status_code == 403


def test_a_caregiver_sees_no_registry_lists(client, world, auth_headers):
    caregiver = auth_headers("caregiver")
    for path in ("/recipients", "/needs", "/workers", "/contracts", "/organisations", "/stations", "/areas"):
        assert client.get(f"/api/v1{path}", headers=caregiver).status_code == 403, path


def test_an_auditor_reads_but_cannot_write(client, world, auth_headers):
    auditor = auth_headers("auditor")
    assert client.get("/api/v1/contracts", headers=auditor).status_code == 200
    assert client.patch(f"/api/v1/recipients/{world['recipient']['id']}", json={"name": "x"},
                        headers=auditor).status_code == 403


def test_search_by_full_id_number_for_managers_only(client, world, auth_headers):
    query = {"id_number": RECIPIENT["id_number"]}
    found = client.get("/api/v1/recipients", query_string=query, headers=auth_headers("manager")).get_json()
    assert [r["id"] for r in found] == [world["recipient"]["id"]]
    assert client.get("/api/v1/recipients", query_string=query, headers=auth_headers("auditor")).get_json() == []


def test_id_numbers_are_encrypted_at_rest_and_masked_in_the_audit_log(client, app, world, auth_headers):
    with app.app_context():
        row = db.session.get(Recipient, world["recipient"]["id"])
        assert RECIPIENT["id_number"] not in (row.id_number_encrypted, row.id_number_hash)
        assert row.id_number_encrypted.startswith("v1:")
    entries = client.get("/api/v1/audit-log", query_string={"entity_type": "recipients"},
                         headers=auth_headers("auditor")).get_json()
    assert entries and RECIPIENT["id_number"] not in str(entries)
    assert "13912345678" not in str(entries)


def _raw_row(table: str, row_id: int) -> dict:
    """A row as the database holds it (no model, no decryption)."""
    return dict(db.session.execute(text(f"SELECT * FROM {table} WHERE id = :id"), {"id": row_id}).mappings().one())


def test_phones_are_encrypted_at_rest_and_in_the_audit_log_only_masked(client, app, world, auth_headers):
    with app.app_context():
        recipient = _raw_row("recipients", world["recipient"]["id"])
        worker = _raw_row("workers", world["worker"]["id"])
    held = " ".join(str(v) for v in (*recipient.values(), *worker.values()))
    for digits in ("13912345678", "88886666", "13812345678"):
        assert digits not in held
    assert "phone" not in recipient and "family_carer_phone" not in recipient and "phone" not in worker
    assert recipient["phone_encrypted"].startswith("v1:") and len(recipient["phone_hash"]) == 64
    assert (recipient["phone_masked"], recipient["family_carer_phone_masked"]) == ("139****5678", "051****6666")
    assert worker["phone_masked"] == "138****5678"
    entries = client.get("/api/v1/audit-log", query_string={"entity_type": "workers"},
                         headers=auth_headers("auditor")).get_json()
    assert entries and "13812345678" not in str(entries) and "138****5678" in str(entries)


def test_phones_are_found_by_their_keyed_hash_however_written(client, world, auth_headers):
    m, rid, other = world["manager"], world["recipient"]["id"], world["other_town"]["id"]  # the same phones

    def found(path, q, headers=m):
        return sorted(r["id"] for r in client.get(f"/api/v1/{path}", query_string={"q": q}, headers=headers).get_json())

    assert found("recipients", "139 1234 5678") == [rid, other]
    assert found("recipients", "+86 13912345678") == [rid, other]
    assert found("recipients", "051188886666") == [rid, other]  # the family carer's landline, without the dash
    assert found("recipients", "13912345670") == []
    assert found("recipients", "13912345678", auth_headers("manager.dagang")) == [rid]  # their town only
    assert found("workers", "138-1234-5678") == [world["worker"]["id"]]
    # who sees phones masked cannot learn whose a number is by searching for it
    assert found("recipients", "13912345678", auth_headers("auditor")) == []
    # a new number is found, the old one no longer
    assert client.patch(f"/api/v1/recipients/{rid}", json={"phone": "13700001111"}, headers=m).status_code == 200
    assert (found("recipients", "13700001111"), found("recipients", "13912345678")) == ([rid], [other])


def test_an_unchanged_phone_is_not_logged_as_changed(client, world, auth_headers):
    m, wid = world["manager"], world["worker"]["id"]
    assert client.patch(f"/api/v1/workers/{wid}", json={"phone": WORKER["phone"], "name": "张敏敏"},
                        headers=m).status_code == 200
    last = client.get("/api/v1/audit-log", query_string={"entity_type": "workers"},
                      headers=auth_headers("auditor")).get_json()[0]
    assert "name" in str(last["changes"]) and "phone" not in str(last["changes"])


def test_phones_in_full_to_those_who_call_masked_for_the_auditor(client, world, auth_headers):
    rid, wid = world["recipient"]["id"], world["worker"]["id"]

    def phones(path, who):
        body = client.get(f"/api/v1/{path}", headers=auth_headers(who)).get_json()
        return body["phone"], body.get("family_carer_phone")

    assert phones(f"recipients/{rid}", "manager") == ("13912345678", "0511-88886666")
    assert phones(f"recipients/{rid}", "manager.dagang") == ("13912345678", "0511-88886666")
    assert phones(f"recipients/{rid}", "auditor") == ("139****5678", "051****6666")
    assert phones(f"workers/{wid}", "manager")[0] == "13812345678"
    assert phones(f"workers/{wid}", "provider")[0] == "13812345678"  # the worker's own organisation
    assert phones(f"workers/{wid}", "auditor")[0] == "138****5678"
    listed = client.get("/api/v1/workers", headers=auth_headers("auditor")).get_json()
    assert {w["phone"] for w in listed if w["id"] == wid} == {"138****5678"}


# --- changes and deactivation (never deletion) -----------------------------------------------


def test_updates_change_only_what_is_given_and_are_validated(client, world):
    m, rid = world["manager"], world["recipient"]["id"]
    changed = client.patch(f"/api/v1/recipients/{rid}", json={"status": "suspended", "notes": "住院"}, headers=m)
    assert changed.status_code == 200 and changed.get_json()["status"] == "suspended"
    assert changed.get_json()["name"] == "王秀英"
    refused(client.patch(f"/api/v1/recipients/{rid}", json={"lat": 40.0}, headers=m), "lat")
    refused(client.patch(f"/api/v1/contracts/{world['contract']['id']}", json={"budget_fen": 5}, headers=m), "fundings")
    lines = client.patch(f"/api/v1/contracts/{world['contract']['id']}", json={"lines": [
        {"service_type": "LC02", "unit_price_fen": 8000, "contracted_quantity": 50},
        {"service_type": "LC03", "unit_price_fen": 10000, "contracted_quantity": 50}]}, headers=m)
    assert lines.status_code == 200 and [li["service_type"] for li in lines.get_json()["lines"]] == ["LC02", "LC03"]


def test_nothing_is_deleted_only_deactivated(client, world):
    m = world["manager"]
    for path in (f"/workers/{world['worker']['id']}", f"/recipients/{world['recipient']['id']}",
                 f"/contracts/{world['contract']['id']}", f"/stations/{world['station']['id']}"):
        assert client.delete(f"/api/v1{path}", headers=m).status_code == 405
    off = client.patch(f"/api/v1/workers/{world['worker']['id']}", json={"active": False}, headers=m)
    assert off.get_json()["active"] is False
    assert client.get(f"/api/v1/workers/{world['worker']['id']}", headers=m).status_code == 200


def test_a_closed_need_must_be_reopened_before_changing(client, world):
    m, nid = world["manager"], world["need"]["id"]
    assert client.patch(f"/api/v1/needs/{nid}", json={"status": "closed"}, headers=m).status_code == 200
    assert client.patch(f"/api/v1/needs/{nid}", json={"quantity": 2}, headers=m).status_code == 409
    assert client.patch(f"/api/v1/needs/{nid}", json={"status": "open"}, headers=m).status_code == 200


def test_a_duplicate_in_another_town_is_refused_without_revealing_who(client, world, auth_headers):
    other = {**RECIPIENT, "id_number": valid_id("19451010", "013")}  # 丁大爷's number, registered in 丁卯
    body = refused(client.post("/api/v1/recipients", json=other, headers=auth_headers("manager.dagang")),
                   "id_number", 409)
    assert str(world["other_town"]["id"]) not in body["message"] + str(body["errors"])


def test_a_stay_at_a_centre_need_not_fit_a_visit_window(client, world):
    stay = {"recipient_id": world["recipient"]["id"], "service_type": "RC03", "quantity": 3, "period": "month",
            "start_date": "2026-12-01"}
    response = client.post("/api/v1/needs", json=stay, headers=world["manager"])
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["duration_min"] == 1440


def test_an_employee_number_cannot_be_changed_to_a_taken_one(client, world):
    second = world["post"]("/workers", {**WORKER, "employee_no": "T002", "start_station_id": world["station"]["id"]})
    response = client.patch(f"/api/v1/workers/{second['id']}", json={"employee_no": "T001"}, headers=world["manager"])
    refused(response, "employee_no", 409)
