"""The catalogue API: bilingual, filtered, paginated, and strict about bad input."""

import json

import pytest

from servicehub.catalog import services


def problem(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert set(body) >= {"code", "status", "message"} and body["status"] == status
    return body


def test_categories_list_five_with_twenty_one_types_in_chinese(client, catalog):
    body = client.get("/api/v1/catalog/categories").get_json()
    assert [c["code"] for c in body] == ["LC", "RH", "PS", "RC", "CD"]
    assert sum(len(c["types"]) for c in body) == 21
    assert body[0]["name"] == "生活照料"
    assert body[0]["types"][0]["name"] == "助餐"
    assert body[0]["types"][0]["category_name"] == "生活照料"
    assert body[0]["types"][0]["names"] == {"zh": "助餐", "en": "Meal delivery"}


@pytest.mark.parametrize(
    "how", [{"query_string": {"lang": "en"}}, {"headers": {"Accept-Language": "en-GB,en;q=0.8"}}]
)
def test_english_by_parameter_or_header(client, catalog, how):
    body = client.get("/api/v1/catalog/categories", **how).get_json()
    assert body[0]["name"] == "Daily-living care"
    assert body[0]["types"][0]["name"] == "Meal delivery"
    assert body[0]["types"][0]["checklist"][0]["name"] == "Meal handed over"


def test_chinese_is_the_default_even_for_other_languages(client, catalog):
    body = client.get("/api/v1/catalog/service-types/LC01", headers={"Accept-Language": "fr-FR"}).get_json()
    assert body["name"] == "助餐"
    body = client.get(
        "/api/v1/catalog/service-types/LC01", headers={"Accept-Language": "zh-CN,zh;q=0.9"}
    ).get_json()
    assert body["name"] == "助餐"


def test_responses_carry_unescaped_chinese(client, catalog):
    raw = client.get("/api/v1/catalog/service-types/LC01").get_data(as_text=True)
    assert "助餐" in raw


def test_service_type_detail(client, catalog):
    body = client.get("/api/v1/catalog/service-types/RH01").get_json()
    assert body["required_qualification"]["code"] == "rehab_therapist"
    assert body["default_window"] == {"start": "08:30", "end": "17:30"}
    assert body["delivery_mode"] == "home_visit" and body["unit"] == "visit"
    assert client.get("/api/v1/catalog/service-types/RC03").get_json()["default_window"] is None


def test_service_types_are_paginated(client, catalog):
    response = client.get("/api/v1/catalog/service-types", query_string={"page_size": 5, "page": 2})
    assert [t["code"] for t in response.get_json()] == ["LC06", "RH01", "RH02", "RH03", "RH04"]
    pagination = json.loads(response.headers["X-Pagination"])
    assert pagination["total"] == 21 and pagination["total_pages"] == 5 and pagination["page"] == 2


@pytest.mark.parametrize(
    ("query", "codes"),
    [
        ({"category": "RC"}, ["RC01", "RC02", "RC03"]),
        ({"delivery_mode": "escort"}, ["RH04"]),
        ({"delivery_mode": "centre", "category": "PS"}, ["PS04"]),
        ({"qualification": "counsellor"}, ["PS02"]),
        ({"delivery_mode": "remote"}, []),
    ],
)
def test_service_type_filters(client, catalog, query, codes):
    body = client.get("/api/v1/catalog/service-types", query_string=query).get_json()
    assert [t["code"] for t in body] == codes


def test_retired_types_are_hidden_unless_asked_but_still_resolve(client, catalog):
    with catalog.app_context():
        services.set_service_type_active("LC04", False)
    listed = [t["code"] for t in client.get("/api/v1/catalog/service-types?category=LC").get_json()]
    assert "LC04" not in listed
    listed = [
        t["code"]
        for t in client.get("/api/v1/catalog/service-types?category=LC&include_inactive=true").get_json()
    ]
    assert "LC04" in listed
    lc = client.get("/api/v1/catalog/categories").get_json()[0]
    assert "LC04" not in [t["code"] for t in lc["types"]]
    assert client.get("/api/v1/catalog/service-types/LC04").get_json()["active"] is False


def test_qualifications(client, catalog):
    body = client.get("/api/v1/catalog/qualifications?lang=en").get_json()
    assert {q["code"]: q["name"] for q in body}["doctor"] == "Licensed doctor"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"category": "ZZ"}, "category"),
        ({"page": -1}, "page"),
        ({"page": "abc"}, "page"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 10_000}, "page_size"),
        ({"delivery_mode": "teleport"}, "delivery_mode"),
        ({"qualification": "wizard"}, "qualification"),
        ({"lang": "fr"}, "lang"),
        ({"include_inactive": "perhaps"}, "include_inactive"),
    ],
)
def test_bad_query_parameters_are_422_naming_the_field(client, catalog, query, field):
    body = problem(client.get("/api/v1/catalog/service-types", query_string=query), 422)
    assert body["code"] == "validation_error"
    assert field in body["errors"]
    assert field in body["message"]


def test_unknown_code_is_404(client, catalog):
    body = problem(client.get("/api/v1/catalog/service-types/ZZ99"), 404)
    assert body["code"] == "not_found" and "ZZ99" in body["message"]


def test_wrong_method_is_405_with_allow_header(client, catalog):
    response = client.post("/api/v1/catalog/categories", json={})
    body = problem(response, 405)
    assert body["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD", "OPTIONS"}


def test_unknown_route_is_404_in_the_error_format(client):
    body = problem(client.get("/api/v1/nothing-here"), 404)
    assert body["code"] == "not_found"


def test_empty_catalogue_lists_nothing(client):
    assert client.get("/api/v1/catalog/categories").get_json() == []
    assert client.get("/api/v1/catalog/service-types").get_json() == []
