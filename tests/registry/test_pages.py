"""Registry pages through the test client: who sees what, masked ID numbers, filters, need and
recipient forms with the services' field errors, workers, organisations and contracts."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape
from types import SimpleNamespace

import pytest

from servicehub.auth.permissions import COMMAND_LINE
from servicehub.registry import services
from tests.registry import factories as make
from tests.support import DEMO_PASSWORD
from tests.web.test_pages import login


def csrf(client) -> str:
    html = client.get("/").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def signed_in(app, username):
    client = app.test_client()
    assert login(client, username).status_code == 302
    return client


def field_errors(html: str, name: str) -> list[str]:
    """The error messages shown next to the form field `name`."""
    match = re.search(rf'data-field="{re.escape(name)}".*?</(label|fieldset)>', html, re.S)
    assert match, f"no field {name} on the page"
    return [unescape(m) for m in re.findall(r'<span class="field-error[^"]*">([^<]*)</span>', match.group(0))]


def need_count(app, recipient_id: int) -> int:
    with app.app_context():
        return services.list_needs(COMMAND_LINE, recipient_id=recipient_id)[1]


@pytest.fixture
def registry(app, demo):
    """Two organisations with a contract and a worker each; recipients in 大港 (one with a need) and 丁卯."""
    with app.app_context():
        own, other = make.organisation_ids()[:2]
        dagang = make.recipient(name="王秀英")
        need = make.need(dagang.id)
        dingmao = make.recipient(name="张桂兰", area=make.DINGMAO, assistance_class="tekun")
        child = make.recipient(
            name="陈小明", assistance_class="child_in_difficulty", id_number=make.id_number(date(2015, 5, 1))
        )
        return SimpleNamespace(
            own=own,
            other=other,
            dagang=dagang.id,
            dagang_id_number=dagang.id_number_shown,
            need=need.id,
            dingmao=dingmao.id,
            dingmao_id_number=dingmao.id_number_shown,
            child=child.id,
            own_worker=make.worker(own, name="赵敏").id,
            other_worker=make.worker(other, name="周强").id,
            own_contract=make.contract(own).id,
            other_contract=make.contract(other, areas=[make.DINGMAO]).id,
        )


# --- who may open which page ----------------------------------------------------------------

READ = {
    "admin": 200,
    "manager": 200,
    "manager.dagang": 200,
    "provider": 200,
    "auditor": 200,
    "caregiver": 403,
}
MANAGE_RECIPIENTS = {
    "admin": 200,
    "manager": 200,
    "manager.dagang": 200,
    "provider": 403,
    "auditor": 403,
    "caregiver": 403,
}
MANAGE_WORKERS = {
    "admin": 200,
    "manager": 200,
    "manager.dagang": 200,
    "provider": 200,
    "auditor": 403,
    "caregiver": 403,
}
PAGES = [
    ("/recipients", READ),
    ("/recipients/{dagang}", {**READ, "provider": 404}),  # no referrals yet: a provider sees no recipient
    ("/recipients/{dingmao}", {**READ, "provider": 404, "manager.dagang": 404}),
    ("/recipients/new", MANAGE_RECIPIENTS),
    ("/needs/{need}/edit", MANAGE_RECIPIENTS),
    ("/organisations", {**READ, "provider": 302}),
    ("/organisations/{own}", READ),
    ("/organisations/{other}", {**READ, "provider": 404}),
    ("/contracts/{own_contract}", READ),
    ("/contracts/{other_contract}", {**READ, "provider": 404}),
    ("/workers", READ),
    ("/workers?organisation_id={own}", READ),
    ("/workers/{own_worker}", READ),
    ("/workers/{other_worker}", {**READ, "provider": 404}),
    ("/workers/new", MANAGE_WORKERS),
    ("/workers/{own_worker}/edit", MANAGE_WORKERS),
    ("/workers/{other_worker}/edit", {**MANAGE_WORKERS, "provider": 404}),
]


@pytest.mark.parametrize("username", sorted(READ))
def test_each_role_gets_the_pages_it_may_see(app, registry, username):
    client = signed_in(app, username)
    got = {url: client.get(url.format(**vars(registry))).status_code for url, _ in PAGES}
    assert got == {url: expected[username] for url, expected in PAGES}


def test_a_provider_admin_is_taken_to_its_own_organisation(app, registry):
    client = signed_in(app, "provider")
    response = client.get("/organisations")
    assert response.headers["Location"] == f"/organisations/{registry.own}"
    html = client.get("/").get_data(as_text=True)
    assert f'href="/organisations/{registry.own}" data-nav="organisations"' in html


def test_a_provider_admin_sees_its_contracts_and_workers_only(app, registry):
    client = signed_in(app, "provider")
    html = client.get(f"/organisations/{registry.own}").get_data(as_text=True)
    assert (
        f'data-contract="{registry.own_contract}"' in html
        and f'data-contract="{registry.other_contract}"' not in html
    )
    assert f'data-worker="{registry.own_worker}"' in html
    workers = client.get("/workers").get_data(as_text=True)
    assert (
        f'data-worker="{registry.own_worker}"' in workers
        and f'data-worker="{registry.other_worker}"' not in workers
    )
    # Asking for another organisation's workers shows none of them.
    other = client.get(f"/workers?organisation_id={registry.other}").get_data(as_text=True)
    assert f'data-worker="{registry.other_worker}"' not in other


def test_registry_navigation_by_role(app, registry):
    def nav(username):
        html = signed_in(app, username).get("/").get_data(as_text=True)
        return re.findall(r'data-nav="([a-z]+)"', html)

    registry = ["recipients", "organisations", "workers"]
    for username in ("admin", "manager", "manager.dagang", "provider", "auditor"):
        entries = nav(username)
        assert [key for key in entries if key in registry] == registry, username
        assert entries.index("recipients") == entries.index("dashboard") + 1  # the daily work comes first
    assert not set(registry) & set(nav("caregiver"))


# --- privacy: ID numbers and phones ---------------------------------------------------------


def shown_id_numbers(client, url) -> list[str]:
    return re.findall(r'data-testid="id-number"[^>]*>([^<]*)<', client.get(url).get_data(as_text=True))


@pytest.mark.parametrize("username", ["admin", "manager", "manager.dagang"])
def test_full_id_number_for_admins_and_the_recipients_town_manager(app, registry, username):
    client = signed_in(app, username)
    assert shown_id_numbers(client, f"/recipients/{registry.dagang}") == [registry.dagang_id_number]
    assert registry.dagang_id_number in shown_id_numbers(client, "/recipients")
    assert "*" not in registry.dagang_id_number


def test_masked_id_number_and_phone_for_the_auditor(app, registry):
    client = signed_in(app, "auditor")
    (shown,) = shown_id_numbers(client, f"/recipients/{registry.dagang}")
    assert re.fullmatch(r"\d{4}\*{10}[\dX]{4}", shown)
    assert shown[:4] == registry.dagang_id_number[:4] and shown[-4:] == registry.dagang_id_number[-4:]
    html = client.get(f"/recipients/{registry.dagang}").get_data(as_text=True)
    assert "138****8000" in html and "13800138000" not in html
    assert all("*" in number for number in shown_id_numbers(client, "/recipients"))


def test_a_workers_phone_in_full_to_its_organisation_and_managers_masked_for_the_auditor(app, registry):
    with app.app_context():
        worker_id = make.worker(registry.own, name="钱芳", phone="13955556666").id
    for username in ("provider", "manager"):
        assert "13955556666" in signed_in(app, username).get(f"/workers/{worker_id}").get_data(as_text=True), username
    assert 'value="13955556666"' in signed_in(app, "provider").get(f"/workers/{worker_id}/edit").get_data(as_text=True)
    html = signed_in(app, "auditor").get(f"/workers/{worker_id}").get_data(as_text=True)
    assert "139****6666" in html and "13955556666" not in html


def test_a_town_manager_sees_only_the_recipients_of_the_town(app, registry):
    client = signed_in(app, "manager.dagang")
    html = client.get("/recipients").get_data(as_text=True)
    assert (
        f'data-recipient="{registry.dagang}"' in html and f'data-recipient="{registry.dingmao}"' not in html
    )
    assert registry.dingmao_id_number not in html
    assert 'name="town"' not in html  # nothing to choose: the town is given
    # Asking for the other town by its code finds nobody rather than leaking it.
    other_town = client.get(f"/recipients?town={make.DINGMAO}").get_data(as_text=True)
    assert f'data-recipient="{registry.dingmao}"' not in other_town


# --- the recipients list ----------------------------------------------------------------------


def listed(client, query="") -> set[int]:
    html = client.get(f"/recipients?{query}").get_data(as_text=True)
    return {int(i) for i in re.findall(r'data-recipient="(\d+)"', html)}


def test_recipient_filters(app, registry):
    with app.app_context():
        services.update_recipient(COMMAND_LINE, registry.child, {"status": "suspended"})
    client = signed_in(app, "manager")
    everyone = {registry.dagang, registry.dingmao, registry.child}
    assert listed(client) == everyone
    assert listed(client, f"town={make.DINGMAO}") == {registry.dingmao}
    assert listed(client, "assistance_class=tekun") == {registry.dingmao}
    assert listed(client, "has_unmet_need=yes") == {registry.dagang}
    assert listed(client, "has_unmet_need=no") == {registry.dingmao, registry.child}
    assert listed(client, "status=suspended") == {registry.child}
    assert listed(client, "q=秀英") == {registry.dagang}
    assert listed(client, f"town={make.DAGANG}&has_unmet_need=no") == {registry.child}
    assert listed(client, "has_unmet_need=maybe&page=x") == everyone  # nonsense is ignored, not a 500


def test_recipient_list_shows_open_needs_and_pages(app, registry, monkeypatch):
    from servicehub.registry import views

    with app.app_context():
        make.need(registry.dagang, service_type="LC01")
    client = signed_in(app, "manager")
    html = client.get("/recipients").get_data(as_text=True)
    row = re.search(rf'data-recipient="{registry.dagang}".*?</tr>', html, re.S).group(0)
    assert re.search(r'data-testid="open-needs"[^>]*><span class="badge warn">2</span>', row)
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    first, second = listed(client, "page=1"), listed(client, "page=2")
    assert len(first) == 2 and len(second) == 1 and not first & second
    page_two = client.get("/recipients?page=2&assistance_class=").get_data(as_text=True)
    assert 'rel="prev" href="/recipients?page=1&amp;assistance_class="' in page_two
    assert 'rel="next"' not in page_two


# --- the need list ----------------------------------------------------------------------------


def need_form(client, **fields):
    data = {
        "csrf_token": csrf(client),
        "service_type": "LC01",
        "quantity": "3",
        "period": "week",
        "preferred_days": ["1", "3", "5"],
        "window_start": "",
        "window_end": "",
        "duration_min": "",
        "priority": "urgent",
        "start_date": date.today().isoformat(),
        "end_date": "",
        "source": "application",
        "notes": "午餐送到家",
    }
    data.update(fields)
    return data


def test_a_manager_adds_a_need(app, registry):
    client = signed_in(app, "manager.dagang")
    page = client.get(f"/recipients/{registry.dagang}").get_data(as_text=True)
    assert 'data-testid="need-form"' in page
    response = client.post(f"/recipients/{registry.dagang}/needs", data=need_form(client))
    assert (
        response.status_code == 302 and response.headers["Location"] == f"/recipients/{registry.dagang}#needs"
    )
    with app.app_context():
        needs, total = services.list_needs(COMMAND_LINE, recipient_id=registry.dagang, service_type="LC01")
        (added,) = needs
        assert (added.quantity, added.preferred_days, added.priority, added.source) == (
            3,
            [1, 3, 5],
            "urgent",
            "application",
        )
        # The window and duration were left empty: the service type's defaults (LC01: 10:30–12:30).
        assert (added.window_start.strftime("%H:%M"), added.window_end.strftime("%H:%M")) == (
            "10:30",
            "12:30",
        )
        assert added.duration_min == added.service_type.default_duration_min
        added_id = added.id
    html = client.get(f"/recipients/{registry.dagang}").get_data(as_text=True)
    assert f'data-need="{added_id}" data-service-type="LC01"' in html


def test_a_window_too_short_for_the_duration_is_shown_next_to_the_field(app, registry):
    client = signed_in(app, "manager")
    before = need_count(app, registry.dagang)
    response = client.post(
        f"/recipients/{registry.dagang}/needs",
        data=need_form(client, window_start="10:00", window_end="10:30", duration_min="60"),
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_errors(html, "duration_min") == ["60 minutes do not fit in a 30-minute window."]
    # The form comes back with what was typed.
    assert 'name="window_start" type="time" value="10:00"' in html and 'value="60"' in html
    assert re.search(r'<option[^>]*selected[^>]*value="LC01"', html)
    assert need_count(app, registry.dagang) == before


def test_a_service_the_class_may_not_receive_is_refused(app, registry):
    client = signed_in(app, "manager")
    page = client.get(f"/recipients/{registry.child}").get_data(as_text=True)
    offered = set(re.findall(r'<option[^>]*value="([A-Z]{2}\d{2})"', page))
    assert offered and {code[:2] for code in offered} == {"CD", "PS", "RH"}  # 困境儿童: no LC
    response = client.post(f"/recipients/{registry.child}/needs", data=need_form(client, service_type="LC01"))
    assert response.status_code == 422
    (message,) = field_errors(response.get_data(as_text=True), "service_type")
    assert message.startswith("LC01") and "(CD, PS, RH)" in message
    assert need_count(app, registry.child) == 0


def test_form_checks_come_back_as_422_without_a_write(app, registry):
    client = signed_in(app, "manager")
    response = client.post(
        f"/recipients/{registry.dagang}/needs", data=need_form(client, quantity="", start_date="soon")
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_errors(html, "quantity") and field_errors(html, "start_date")
    assert need_count(app, registry.dagang) == 1


def test_a_need_is_edited_suspended_closed_and_reopened(app, registry):
    client = signed_in(app, "manager.dagang")
    form = client.get(f"/needs/{registry.need}/edit").get_data(as_text=True)
    assert 'name="quantity" required type="number" value="1"' in form
    edited = need_form(
        client,
        quantity="2",
        preferred_days=["2", "4"],
        window_start="09:00",
        window_end="11:30",
        duration_min="90",
        priority="normal",
    )
    response = client.post(f"/needs/{registry.need}/edit", data=edited)
    assert response.status_code == 302

    def state():
        with app.app_context():
            need = services.get_need(COMMAND_LINE, registry.need)
            return (
                need.quantity,
                need.preferred_days,
                need.window_start.strftime("%H:%M"),
                need.duration_min,
                need.status,
            )

    assert state() == (2, [2, 4], "09:00", 90, "open")
    bad = client.post(
        f"/needs/{registry.need}/edit", data=need_form(client, quantity="3", preferred_days=["2"])
    )
    assert bad.status_code == 422
    assert field_errors(bad.get_data(as_text=True), "quantity") == [
        "3 a week cannot fit on 1 preferred day(s)."
    ]
    assert state()[0] == 2
    for target in ("suspended", "closed", "open"):
        response = client.post(
            f"/needs/{registry.need}/status", data={"csrf_token": csrf(client), "status": target}
        )
        assert response.status_code == 302 and state()[-1] == target
    html = client.get(f"/recipients/{registry.dagang}").get_data(as_text=True)
    assert 'data-need-status="open"' in html


def test_a_closed_need_must_be_reopened_before_it_changes(app, registry):
    client = signed_in(app, "manager")
    client.post(f"/needs/{registry.need}/status", data={"csrf_token": csrf(client), "status": "closed"})
    response = client.post(
        f"/needs/{registry.need}/status", data={"csrf_token": csrf(client), "status": "suspended"}
    )
    assert response.status_code == 302
    assert "reopen it first" in unescape(client.get(response.headers["Location"]).get_data(as_text=True))
    with app.app_context():
        assert services.get_need(COMMAND_LINE, registry.need).status == "closed"


def test_the_auditor_reads_but_gets_no_forms_and_cannot_post(app, registry):
    client = signed_in(app, "auditor")
    html = client.get(f"/recipients/{registry.dagang}").get_data(as_text=True)
    assert "need-form" not in html and "/status" not in html and f"/needs/{registry.need}/edit" not in html
    assert "/recipients/new" not in client.get("/recipients").get_data(as_text=True)
    assert 'href="/workers/new' not in client.get("/workers").get_data(as_text=True)
    token = csrf(client)
    assert client.post(f"/recipients/{registry.dagang}/needs", data=need_form(client)).status_code == 403
    assert (
        client.post(
            f"/needs/{registry.need}/status", data={"csrf_token": token, "status": "closed"}
        ).status_code
        == 403
    )
    assert (
        client.post(f"/workers/{registry.own_worker}/active", data={"csrf_token": token}).status_code == 403
    )
    assert need_count(app, registry.dagang) == 1


def test_a_town_manager_cannot_add_needs_in_another_town(app, registry):
    client = signed_in(app, "manager.dagang")
    assert client.post(f"/recipients/{registry.dingmao}/needs", data=need_form(client)).status_code == 404
    assert need_count(app, registry.dingmao) == 0


def test_posts_without_the_csrf_token_are_refused(app, registry):
    client = signed_in(app, "manager")
    data = need_form(client)
    del data["csrf_token"]
    assert client.post(f"/recipients/{registry.dagang}/needs", data=data).status_code == 400
    assert need_count(app, registry.dagang) == 1


# --- registering recipients -------------------------------------------------------------------


def recipient_form(client, **fields):
    data = {
        "csrf_token": csrf(client),
        "name": "刘桂芳",
        "id_number": make.id_number(date(1944, 8, 8), female=True),
        "assistance_class": "elderly_alone",
        "subclass": "elderly_alone_80",
        "class_valid_until": "",
        "disability_grade": "",
        "lives_alone": "y",
        "area": make.DAGANG,
        "address": "大港街道金港路8号",
        "lat": "",
        "lon": "",
        "phone": "0511-88886666",
        "family_carer_name": "",
        "family_carer_phone": "",
        "carer_gender": "female",
        "language": "镇江话",
        "notes": "",
    }
    data.update(fields)
    return data


def test_a_manager_registers_a_recipient(app, demo):
    client = signed_in(app, "manager.dagang")
    page = client.get("/recipients/new").get_data(as_text=True)
    assert f'value="{make.DAGANG}"' in page and f'value="{make.DINGMAO}"' not in page  # own town only
    data = recipient_form(client)
    response = client.post("/recipients/new", data=data)
    assert response.status_code == 302
    recipient_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        recipient = services.get_recipient(COMMAND_LINE, recipient_id)
        assert (recipient.name, recipient.gender, recipient.birth_date) == (
            "刘桂芳",
            "female",
            date(1944, 8, 8),
        )
        assert recipient.id_number_shown == data["id_number"] and recipient.lives_alone
        # No coordinates given: the town's centroid stands in.
        assert (recipient.lat, recipient.lon) == make.TOWN_CENTRES[make.DAGANG]
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "高龄独居" in html and data["id_number"] in html


def test_a_bad_id_number_is_shown_next_to_the_field(app, demo):
    client = signed_in(app, "manager")
    good = make.id_number()
    response = client.post(
        "/recipients/new", data=recipient_form(client, id_number=make.wrong_check_digit(good))
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_errors(html, "id_number") == ["The ID number's check digit is wrong (GB 11643)."]
    assert 'value="大港街道金港路8号"' in html  # what was typed is kept
    malformed = client.post("/recipients/new", data=recipient_form(client, id_number="32119119440808"))
    assert malformed.status_code == 422 and field_errors(malformed.get_data(as_text=True), "id_number")
    with app.app_context():
        assert services.list_recipients(COMMAND_LINE)[1] == 0


def test_a_registered_id_number_and_a_wrong_subclass_are_refused(app, registry):
    client = signed_in(app, "manager")
    duplicate = client.post(
        "/recipients/new", data=recipient_form(client, id_number=registry.dagang_id_number)
    )
    assert duplicate.status_code == 409
    assert field_errors(duplicate.get_data(as_text=True), "id_number") == [
        f"Already registered as recipient {registry.dagang}."
    ]
    wrong = client.post("/recipients/new", data=recipient_form(client, subclass="orphan"))
    assert wrong.status_code == 422
    assert field_errors(wrong.get_data(as_text=True), "subclass")[0].startswith(
        "Not a subclass of elderly_alone"
    )
    with app.app_context():
        assert services.list_recipients(COMMAND_LINE)[1] == 3


# --- organisations, contracts, workers --------------------------------------------------------


def test_the_contract_shows_budget_funding_and_lines(app, registry):
    client = signed_in(app, "auditor")
    html = client.get(f"/contracts/{registry.own_contract}").get_data(as_text=True)
    assert '<dd data-testid="budget">¥100,000.00</dd>' in html
    assert "¥80,000.00" in html and "¥20,000.00" in html  # government and charity
    lc01 = re.search(r'data-line="LC01".*?</tr>', html, re.S).group(0)
    assert "¥15.00" in lc01 and "2,000" in lc01 and "¥30,000.00" in lc01
    assert 'data-testid="contracted-total">¥60,000.00<' in html
    assert "大港街道" in html and "低保" in html and "特困" in html


def test_organisations_list_for_managers(app, registry):
    with app.app_context():
        count = len(make.organisation_ids())
    html = signed_in(app, "manager").get("/organisations").get_data(as_text=True)
    assert len(re.findall(r'data-organisation="\d+"', html)) == count
    assert f'data-organisation="{registry.own}"' in html and f'data-organisation="{registry.other}"' in html
    found = signed_in(app, "manager").get("/organisations?q=乐龄").get_data(as_text=True)
    assert (
        f'data-organisation="{registry.own}"' in found
        and f'data-organisation="{registry.other}"' not in found
    )


def worker_form(client, **fields):
    data = {
        "csrf_token": csrf(client),
        "organisation_id": "",
        "employee_no": "LL-007",
        "name": "孙丽",
        "gender": "female",
        "phone": "13912345678",
        "start_station_id": "",
        "start_lat": "32.2",
        "start_lon": "119.7",
        "travel_mode": "bicycle",
        "avail_mon": "08:00-12:00, 13:30-17:30",
        "avail_tue": "",
        "avail_wed": "08:00-12:00",
        "avail_thu": "",
        "avail_fri": "",
        "avail_sat": "",
        "avail_sun": "",
        "max_minutes_per_day": "360",
        "max_visits_per_day": "6",
        "languages": "普通话，镇江话",
        "qualifications-0-certificate_no": "",
        "qualifications-0-expires_on": "",
        "qualifications-1-certificate_no": "",
        "qualifications-1-expires_on": "",
        "qualifications-2-held": "y",
        "qualifications-2-certificate_no": "KF-1",
        "qualifications-2-expires_on": (date.today() + timedelta(days=10)).isoformat(),
        "qualifications-3-certificate_no": "",
        "qualifications-3-expires_on": "",
    }
    data.update(fields)
    return data


def test_a_provider_admin_adds_and_edits_a_worker(app, registry):
    client = signed_in(app, "provider")
    assert 'name="organisation_id"' not in client.get("/workers/new").get_data(as_text=True)
    response = client.post("/workers/new", data=worker_form(client))
    assert response.status_code == 302
    worker_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        worker = services.get_worker(COMMAND_LINE, worker_id)
        assert worker.organisation_id == registry.own
        assert worker.availability == {
            "mon": [["08:00", "12:00"], ["13:30", "17:30"]],
            "wed": [["08:00", "12:00"]],
        }
        assert worker.languages == ["普通话", "镇江话"]
        assert [(q.qualification.code, q.certificate_no) for q in worker.qualifications] == [
            ("rehab_therapist", "KF-1")
        ]
    page = client.get(f"/workers/{worker_id}").get_data(as_text=True)
    assert 'data-qualification="rehab_therapist" data-expiry="soon"' in page
    assert re.search(r'data-day="mon">.*?08:00–12:00.*?13:30–17:30', page, re.S)

    edit = client.get(f"/workers/{worker_id}/edit").get_data(as_text=True)
    assert 'name="avail_mon" placeholder="08:00-12:00" type="text" value="08:00-12:00, 13:30-17:30"' in edit
    changed = worker_form(client, max_visits_per_day="8", avail_mon="", **{"qualifications-2-held": ""})
    assert client.post(f"/workers/{worker_id}/edit", data=changed).status_code == 302
    with app.app_context():
        worker = services.get_worker(COMMAND_LINE, worker_id)
        assert (worker.max_visits_per_day, worker.availability, worker.qualifications, worker.active) == (
            8,
            {"wed": [["08:00", "12:00"]]},
            [],
            False,
        )  # "active" was not ticked: deactivated
    assert client.post(f"/workers/{worker_id}/active", data={"csrf_token": csrf(client)}).status_code == 302
    with app.app_context():
        assert services.get_worker(COMMAND_LINE, worker_id).active


def test_worker_form_errors(app, registry):
    client = signed_in(app, "manager")
    typo = client.post(
        "/workers/new", data=worker_form(client, organisation_id=str(registry.own), avail_tue="8-12")
    )
    assert typo.status_code == 422
    assert field_errors(typo.get_data(as_text=True), "avail_tue")
    overlap = client.post(
        "/workers/new",
        data=worker_form(client, organisation_id=str(registry.own), avail_mon="08:00-12:00, 11:00-13:00"),
    )
    assert overlap.status_code == 422
    assert "mon: intervals overlap or are out of order." in unescape(overlap.get_data(as_text=True))
    nowhere = client.post(
        "/workers/new", data=worker_form(client, organisation_id=str(registry.own), start_lat="")
    )
    assert nowhere.status_code == 422 and field_errors(nowhere.get_data(as_text=True), "start_lat")
    no_org = client.post("/workers/new", data=worker_form(client))
    assert no_org.status_code == 422 and field_errors(no_org.get_data(as_text=True), "organisation_id")
    with app.app_context():
        assert services.list_workers(COMMAND_LINE)[1] == 2


def test_qualification_expiry_is_flagged(app, registry):
    today = date.today()
    with app.app_context():
        make.worker(
            registry.own,
            name="钱医生",
            qualifications=[
                {"code": "doctor", "certificate_no": "Y1", "expires_on": today - timedelta(days=1)},
                {"code": "counsellor", "certificate_no": "X1", "expires_on": today + timedelta(days=29)},
                {"code": "rehab_therapist", "certificate_no": "K1", "expires_on": today + timedelta(days=90)},
            ],
        )
    html = signed_in(app, "provider").get("/workers").get_data(as_text=True)
    assert 'data-qualification="doctor" data-expiry="expired"' in html
    assert 'data-qualification="counsellor" data-expiry="soon"' in html
    assert re.search(r'data-qualification="rehab_therapist">', html)


def test_expiry_state_boundaries():
    from servicehub.registry.views import expiry_state

    today = date(2026, 3, 1)
    assert expiry_state(None, today) == ""
    assert expiry_state(date(2026, 2, 28), today) == "expired"
    assert expiry_state(today, today) == "soon"
    assert expiry_state(date(2026, 3, 31), today) == "soon"
    assert expiry_state(date(2026, 4, 1), today) == ""


def test_money_is_shown_from_integer_fen():
    from servicehub.web.format import yuan

    assert [yuan(0), yuan(5), yuan(123456789), yuan(-150)] == ["¥0.00", "¥0.05", "¥1,234,567.89", "-¥1.50"]


def test_pages_are_english_on_request(app, registry):
    client = signed_in(app, "manager")
    client.get("/lang/en")
    html = client.get(f"/recipients/{registry.dagang}").get_data(as_text=True)
    assert "Need list" in html and "Home cleaning" in html


def test_a_refusal_with_values_is_worded_in_the_pages_language_and_english_in_the_api(app, registry, client):
    manager = signed_in(app, "manager")
    missing = manager.get("/recipients/987654")
    assert missing.status_code == 404 and "没有编号为 987654 的救助对象。" in unescape(missing.get_data(as_text=True))
    manager.get("/lang/en")
    assert "No recipient with id 987654." in unescape(manager.get("/recipients/987654").get_data(as_text=True))
    token = client.post("/api/v1/auth/tokens", json={"username": "manager", "password": DEMO_PASSWORD}).get_json()
    api = client.get("/api/v1/recipients/987654", headers={"Authorization": f"Bearer {token['token']}"})
    assert api.status_code == 404 and api.get_json()["message"] == "No recipient with id 987654."
