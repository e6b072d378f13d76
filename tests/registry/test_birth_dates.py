"""Birth dates only beside full ID numbers: whoever sees a recipient's number masked sees the age instead, since the
masked number (area code's start, serial, check digit), the district's code and the birth date rebuild the full one."""

import re
from datetime import date

import pytest

from servicehub.registry.identifiers import age_in_years
from servicehub.timeutil import district_today
from tests.registry import factories
from tests.support import DEMO_PASSWORD

BORN = date(1949, 12, 31)


@pytest.mark.parametrize(("today", "age"), [
    (date(2026, 12, 30), 76), (date(2026, 12, 31), 77), (date(2027, 1, 1), 77), (date(1949, 12, 31), 0),
])
def test_age_in_whole_years(today, age):
    assert age_in_years(BORN, today) == age


def test_a_leap_day_birthday_counts_from_the_first_of_march():
    assert age_in_years(date(2000, 2, 29), date(2027, 2, 28)) == 26
    assert age_in_years(date(2000, 2, 29), date(2027, 3, 1)) == 27


@pytest.fixture
def born_1949(app, demo):
    """(id, full ID number, age today) of a recipient born on BORN."""
    with app.app_context():
        number = factories.id_number(BORN)
        return factories.recipient(id_number=number).id, number, age_in_years(BORN, district_today())


@pytest.mark.parametrize("username", ["admin", "manager", "manager.dagang"])
def test_roles_that_see_the_full_number_see_the_birth_date(client, born_1949, auth_headers, username):
    rid, number, age = born_1949
    shown = client.get(f"/api/v1/recipients/{rid}", headers=auth_headers(username)).get_json()
    assert shown["id_number"] == number
    assert shown["birth_date"] == "1949-12-31" and shown["age"] == age
    listed = client.get("/api/v1/recipients", query_string={"sort": "-birth_date"},
                        headers=auth_headers(username)).get_json()
    assert [(r["id"], r["birth_date"]) for r in listed] == [(rid, "1949-12-31")]


def test_a_role_that_sees_the_number_masked_sees_only_the_age(client, born_1949, auth_headers):
    rid, number, age = born_1949
    auditor = auth_headers("auditor")
    shown = client.get(f"/api/v1/recipients/{rid}", headers=auditor).get_json()
    assert shown["id_number"] != number and "*" in shown["id_number"]
    assert shown["birth_date"] is None and shown["age"] == age
    listed = client.get("/api/v1/recipients", headers=auditor)
    assert [(r["birth_date"], r["age"]) for r in listed.get_json()] == [(None, age)]
    assert "1949-12-31" not in listed.get_data(as_text=True) and "19491231" not in listed.get_data(as_text=True)
    # nor can the order of a sort by birth date tell people of one age apart
    by_birth = client.get("/api/v1/recipients", query_string={"sort": "birth_date"}, headers=auditor)
    assert by_birth.status_code == 422 and "sort" in by_birth.get_json()["errors"]


def test_the_audit_log_keeps_no_birth_date(client, born_1949, auth_headers):
    entries = client.get("/api/v1/audit-log", query_string={"entity_type": "recipients"},
                         headers=auth_headers("auditor")).get_json()
    assert entries and "1949-12-31" not in str(entries)


def test_the_api_document_says_when_the_birth_date_is_null(client):
    recipient = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["Recipient"]["properties"]
    assert recipient["birth_date"]["nullable"] is True and "masked" in recipient["birth_date"]["description"]
    assert recipient["age"]["type"] == "integer"


def page_of(client, username, url):
    page = client.get("/login")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.get_data(as_text=True)).group(1)
    client.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token})
    return client.get(url).get_data(as_text=True)


def born_line(html: str) -> str:
    return re.search(r'<dd data-testid="born">(.*?)</dd>', html, re.S).group(1)


def test_the_recipient_page_shows_the_age_where_the_number_is_masked(app, client, born_1949):
    rid, _number, age = born_1949
    auditor_page = page_of(client, "auditor", f"/recipients/{rid}")
    assert "1949-12-31" not in auditor_page and f"{age} 岁" in born_line(auditor_page)
    manager_page = page_of(app.test_client(), "manager", f"/recipients/{rid}")
    assert "1949-12-31" in born_line(manager_page) and f"{age} 岁" in born_line(manager_page)
