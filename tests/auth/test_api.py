"""Tokens, the signed-in user, user management and the audit log through the API."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from servicehub.auth.models import ApiToken, AuditLog, User
from servicehub.database import utcnow
from servicehub.extensions import db
from tests.support import DEMO_PASSWORD


def token(client, username, password=DEMO_PASSWORD, **extra):
    return client.post("/api/v1/auth/tokens", json={"username": username, "password": password, **extra})


def bearer(response):
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


# --- tokens ---------------------------------------------------------------------------------


def test_token_is_issued_once_and_identifies_the_user(client, demo):
    response = token(client, "auditor", name="reports laptop", ttl_days=7)
    assert response.status_code == 201
    body = response.get_json()
    assert body["token"].startswith("shb_") and body["user"]["role"] == "auditor"
    assert "password" not in response.get_data(as_text=True)
    me = client.get("/api/v1/auth/me", headers=bearer(response)).get_json()
    assert me["username"] == "auditor" and "audit.read" in me["permissions"]
    assert not [p for p in me["permissions"] if p.endswith(".manage")]
    listed = client.get("/api/v1/auth/tokens", headers=bearer(response)).get_json()
    assert [t["name"] for t in listed] == ["reports laptop"]
    assert "token" not in listed[0]


def test_only_the_hash_of_a_token_is_stored(client, app, demo):
    secret = token(client, "auditor").get_json()["token"]
    with app.app_context():
        stored = db.session.scalars(select(ApiToken)).one()
        assert secret not in (stored.token_hash, stored.prefix) and len(stored.token_hash) == 64


@pytest.mark.parametrize(("username", "password"), [("auditor", "wrong-password"), ("nobody", DEMO_PASSWORD)])
def test_wrong_credentials_are_401_with_one_message(client, demo, username, password):
    response = token(client, username, password)
    assert response.status_code == 401
    body = response.get_json()
    assert body["code"] == "invalid_credentials" and body["message"] == "Wrong username or password."


def test_repeated_failures_slow_the_account_down_even_for_the_right_password(client, demo):
    for _ in range(3):  # tests/auth/test_throttle.py has the waits and who waits
        assert token(client, "manager", "guess-guess-guess").status_code == 401
    slowed = token(client, "manager")
    assert slowed.status_code == 429
    assert slowed.get_json()["code"] == "too_many_attempts"
    assert int(slowed.headers["Retry-After"]) > 0
    assert token(client, "auditor").status_code == 201  # other accounts are unaffected


def test_revoked_and_expired_tokens_stop_working(client, app, demo):
    issued = token(client, "auditor")
    headers = bearer(issued)
    assert client.delete(f"/api/v1/auth/tokens/{issued.get_json()['id']}", headers=headers).status_code == 204
    response = client.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    second = token(client, "auditor")
    with app.app_context():
        stored = db.session.get(ApiToken, second.get_json()["id"])
        stored.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert client.get("/api/v1/auth/me", headers=bearer(second)).status_code == 401


def test_someone_elses_token_cannot_be_revoked(client, demo):
    mine = token(client, "auditor")
    theirs = token(client, "manager")
    response = client.delete(f"/api/v1/auth/tokens/{theirs.get_json()['id']}", headers=bearer(mine))
    assert response.status_code == 404
    assert client.get("/api/v1/auth/me", headers=bearer(theirs)).status_code == 200


def test_a_deactivated_users_token_stops_working(client, demo, auth_headers):
    headers = auth_headers("caregiver")
    response = client.patch(f"/api/v1/users/{demo['caregiver']}", json={"active": False}, headers=auth_headers("admin"))
    assert response.status_code == 200
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [({"username": "auditor"}, "password"), ({"username": "auditor", "password": DEMO_PASSWORD, "ttl_days": 0}, "ttl_days")],
)
def test_malformed_token_requests_are_422(client, demo, body, field):
    response = client.post("/api/v1/auth/tokens", json=body)
    assert response.status_code == 422 and field in response.get_json()["errors"]


# --- authentication and permissions on routes -----------------------------------------------


def test_protected_routes_need_credentials(client, demo):
    response = client.get("/api/v1/users")
    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthenticated"
    assert client.get("/api/v1/auth/me", headers={"Authorization": "Bearer shb_forged"}).status_code == 401


@pytest.mark.parametrize("username", ["manager", "provider", "caregiver", "auditor"])
def test_user_management_is_for_admins_only(client, demo, auth_headers, username):
    response = client.get("/api/v1/users", headers=auth_headers(username))
    assert response.status_code == 403 and response.get_json()["code"] == "forbidden"


def test_public_routes_need_nothing(client, demo):
    assert client.get("/api/v1/catalog/categories").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200


# --- users ----------------------------------------------------------------------------------


def test_admin_creates_lists_and_updates_users(client, demo, auth_headers):
    admin = auth_headers("admin")
    created = client.post(
        "/api/v1/users",
        json={"username": "li.na", "password": "a-long-password-1", "role": "manager", "town": "321191002"},
        headers=admin,
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["town"] == "321191002" and "password" not in body
    listed = client.get("/api/v1/users", query_string={"role": "manager"}, headers=admin).get_json()
    assert {u["username"] for u in listed} == {"manager", "manager.dagang", "li.na"}
    updated = client.patch(f"/api/v1/users/{body['id']}", json={"role": "auditor", "town": None}, headers=admin)
    assert updated.status_code == 200 and updated.get_json()["role"] == "auditor"
    assert updated.get_json()["town"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "X Y", "password": "a-long-password-1", "role": "auditor"}, "username"),
        ({"username": "short.pw", "password": "short", "role": "auditor"}, "password"),
        ({"username": "no.role", "password": "a-long-password-1", "role": "wizard"}, "role"),
        ({"username": "lonely", "password": "a-long-password-1", "role": "caregiver"}, "organisation_id"),
        ({"username": "ghost", "password": "a-long-password-1", "role": "provider_admin", "organisation_id": 999}, "organisation_id"),
        ({"username": "misplaced", "password": "a-long-password-1", "role": "auditor", "organisation_id": 1}, "organisation_id"),
        ({"username": "nowhere", "password": "a-long-password-1", "role": "manager", "town": "999999"}, "town"),
        ({"username": "wrongtown", "password": "a-long-password-1", "role": "auditor", "town": "321191001"}, "town"),
        ({"username": "samesame", "password": "aaaaaaaaaaaa", "role": "auditor"}, "password"),
    ],
)
def test_bad_users_are_422_naming_the_field_and_nothing_is_written(client, app, demo, auth_headers, body, field):
    response = client.post("/api/v1/users", json=body, headers=auth_headers("admin"))
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    with app.app_context():
        assert db.session.scalars(select(User).where(User.username == body["username"].lower())).first() is None


def test_duplicate_username_is_409(client, demo, auth_headers):
    response = client.post(
        "/api/v1/users", json={"username": "auditor", "password": "a-long-password-1", "role": "auditor"},
        headers=auth_headers("admin"),
    )
    assert response.status_code == 409 and "username" in response.get_json()["errors"]


def test_admin_cannot_demote_or_deactivate_themself(client, demo, auth_headers):
    admin = auth_headers("admin")
    assert client.patch(f"/api/v1/users/{demo['admin']}", json={"active": False}, headers=admin).status_code == 409
    assert client.patch(f"/api/v1/users/{demo['admin']}", json={"role": "auditor"}, headers=admin).status_code == 409


def test_password_change_ends_existing_sessions_and_checks_strength(client, demo, auth_headers):
    admin = auth_headers("admin")
    weak = client.put(f"/api/v1/users/{demo['auditor']}/password", json={"password": "123"}, headers=admin)
    assert weak.status_code == 422
    ok = client.put(f"/api/v1/users/{demo['auditor']}/password", json={"password": "brand-new-password"}, headers=admin)
    assert ok.status_code == 204
    assert token(client, "auditor").status_code == 401
    assert token(client, "auditor", "brand-new-password").status_code == 201


# --- audit log ------------------------------------------------------------------------------


def test_changes_are_audited_with_who_and_masked_secrets(client, demo, auth_headers):
    admin = auth_headers("admin")
    created = client.post(
        "/api/v1/users", json={"username": "wang.fang", "password": "a-long-password-1", "role": "auditor"},
        headers=admin,
    ).get_json()
    entries = client.get(
        "/api/v1/audit-log", query_string={"entity_type": "users", "entity_id": str(created["id"])},
        headers=auth_headers("auditor"),
    ).get_json()
    assert [e["action"] for e in entries] == ["create"]
    entry = entries[0]
    assert entry["actor"] == "admin" and entry["actor_id"] == demo["admin"]
    assert entry["changes"]["username"] == [None, "wang.fang"]
    assert entry["changes"]["password_hash"] == [None, "***"]
    assert "a-long-password-1" not in str(entry)
    client.patch(f"/api/v1/users/{created['id']}", json={"display_name": "王芳"}, headers=admin)
    latest = client.get(
        "/api/v1/audit-log", query_string={"entity_type": "users", "entity_id": str(created["id"])}, headers=admin
    ).get_json()[0]
    assert latest["action"] == "update" and latest["changes"] == {"display_name": ["wang.fang", "王芳"]}


def test_sign_ins_are_audited(client, demo, auth_headers):
    token(client, "manager", "wrong-password")
    token(client, "manager")
    entries = client.get("/api/v1/audit-log", query_string={"entity_type": "users"}, headers=auth_headers("auditor"))
    actions = [(e["action"], e["actor"]) for e in entries.get_json()]
    assert ("login", "manager") in actions and ("login_failed", "anonymous") in actions


def test_audit_log_filters_and_bad_filters(client, demo, auth_headers):
    auditor = auth_headers("auditor")
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()  # the filter reads district days
    by_user = client.get("/api/v1/audit-log", query_string={"user": "auditor"}, headers=auditor).get_json()
    assert by_user and {e["actor"] for e in by_user} == {"auditor"}
    assert client.get("/api/v1/audit-log", query_string={"from": "2000-01-01", "to": "2000-01-02"},
                      headers=auditor).get_json() == []
    assert client.get("/api/v1/audit-log", query_string={"from": "2000-01-01", "to": today}, headers=auditor).get_json()
    bad = client.get("/api/v1/audit-log", query_string={"from": "2026-02-01", "to": "2026-01-01"}, headers=auditor)
    assert bad.status_code == 422 and "from" in bad.get_json()["errors"]
    assert client.get("/api/v1/audit-log", query_string={"from": "yesterday"}, headers=auditor).status_code == 422
    assert client.get("/api/v1/audit-log", headers=auth_headers("manager")).status_code == 403


def test_audit_rows_cannot_be_changed(app, demo):
    with app.app_context():
        entry = db.session.scalars(select(AuditLog)).first()
        entry.action = "forged"
        with pytest.raises(Exception, match="append-only"):
            db.session.commit()
        db.session.rollback()
        with pytest.raises(Exception, match="append-only"):
            db.session.execute(text("UPDATE audit_log SET action = 'forged'"))
            db.session.commit()
        db.session.rollback()
        assert not db.session.scalars(select(AuditLog).where(AuditLog.action == "forged")).first()


def test_a_failed_change_leaves_no_audit_entry(app, demo):
    from servicehub.auth import services
    from servicehub.errors import ValidationFailed

    with app.app_context():
        before = db.session.query(AuditLog).count()
        with pytest.raises(ValidationFailed):
            services.create_user(username="x.y.z", role="caregiver", password="a-long-password-1")
        assert db.session.query(AuditLog).count() == before
