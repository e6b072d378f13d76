"""Pages through the test client: sign-in, CSRF, sessions, redirects, headers and error pages."""

import re

import pytest

from tests.support import DEMO_PASSWORD


def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf-token" content="([^"]+)"', html).group(
        1
    ) or re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def login(client, username, password=DEMO_PASSWORD, next_url=None):
    page = client.get("/login")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.get_data(as_text=True)).group(1)
    url = "/login" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"username": username, "password": password, "csrf_token": token})


def test_pages_need_a_session(client, demo):
    response = client.get("/")
    assert response.status_code == 302 and "/login?next=/" in response.headers["Location"]


def test_sign_in_gives_a_fresh_session_and_goes_where_asked(client, demo):
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    response = login(client, "manager", next_url="/catalog")
    assert response.status_code == 302 and response.headers["Location"] == "/catalog"
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["_user_id"].startswith(f"{demo['manager']}:")


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "javascript:alert(1)"])
def test_no_open_redirect_after_sign_in(client, demo, target):
    response = login(client, "manager", next_url=target)
    assert response.headers["Location"] == "/"


def test_wrong_password_is_shown_and_not_a_session(client, demo):
    response = login(client, "manager", "wrong-password")
    assert response.status_code == 401
    assert "用户名或密码错误" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_forms_without_csrf_token_are_refused(client, demo):
    response = client.post("/login", data={"username": "manager", "password": DEMO_PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_session_api_writes_need_the_csrf_header(client, demo):
    login(client, "admin")
    body = {"username": "via.session", "password": "a-long-password-1", "role": "auditor"}
    assert client.post("/api/v1/users", json=body).status_code == 400
    html = client.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)
    assert client.post("/api/v1/users", json=body, headers={"X-CSRFToken": token}).status_code == 201


def test_a_password_change_signs_the_user_out(client, app, demo):
    from servicehub.auth import services

    login(client, "auditor")
    assert client.get("/").status_code == 200
    with app.app_context():
        services.set_password(services.get_user(demo["auditor"]), "another-long-password")
    assert client.get("/").status_code == 302


def test_logout_ends_the_session(client, demo):
    login(client, "manager")
    html = client.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_security_headers_and_cookie_flags(client, demo):
    response = login(client, "manager")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in page.get_data(as_text=True)  # no inline scripts anywhere
    assert "geolocation=(self)" in page.headers["Permissions-Policy"]
    assert "Strict-Transport-Security" not in page.headers  # plain HTTP in development


def test_https_deployments_tell_browsers_to_stay_on_https(make_app):
    app = make_app(SESSION_COOKIE_SECURE=True)
    page = app.test_client().get("/login")
    assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_language_switch_sticks_to_the_session(client, demo):
    login(client, "manager")
    assert "服务清单" in client.get("/catalog").get_data(as_text=True)
    client.get("/lang/en?next=/catalog")
    assert "Service catalogue" in client.get("/catalog").get_data(as_text=True)
    client.get("/lang/xx")  # unknown: ignored
    assert "Service catalogue" in client.get("/catalog").get_data(as_text=True)


def test_catalogue_page_is_public_and_lists_all_types(client, catalog):
    html = client.get("/catalog").get_data(as_text=True)
    assert len(re.findall(r'data-type="[A-Z]{2}\d{2}"', html)) == 21


def test_error_pages_are_html_and_api_errors_are_json(client, demo):
    page = client.get("/nowhere")
    assert page.status_code == 404 and page.mimetype == "text/html"
    api = client.get("/api/v1/nowhere")
    assert api.status_code == 404 and api.mimetype == "application/problem+json"
