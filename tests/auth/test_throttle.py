"""Sign-in throttling: failures slow down the account at the address they came from, with growing waits, and never
lock the account out for anyone elsewhere."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from servicehub.auth.throttle import failure_delay, retry_after
from servicehub.database import clock_at
from tests.support import DEMO_PASSWORD

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
A, B = "198.51.100.7", "203.0.113.9"

# --- the arithmetic ---------------------------------------------------------------------------


@pytest.mark.parametrize(("failures", "seconds"), [
    (0, 0), (2, 0), (3, 1), (4, 2), (5, 4), (6, 8), (12, 512), (13, 900), (14, 900), (10_000, 900),
])
def test_waits_start_after_the_free_failures_and_double_up_to_the_cap(failures, seconds):
    assert failure_delay(failures, free=3, first=1, cap=900) == seconds


def test_retry_after_counts_whole_seconds_up():
    assert retry_after(T0 + timedelta(seconds=1.2), T0) == 2
    assert retry_after(T0 + timedelta(seconds=4), T0) == 4
    assert retry_after(T0 - timedelta(seconds=3), T0) == 0


# --- through the API --------------------------------------------------------------------------


def sign_in(client, username, password, ip, at):
    with clock_at(at):
        return client.post("/api/v1/auth/tokens", json={"username": username, "password": password},
                           environ_base={"REMOTE_ADDR": ip})


def fail(client, username, ip, at):
    response = sign_in(client, username, "guess-guess-guess", ip, at)
    assert response.status_code == 401, response.get_json()


def test_waits_grow_and_retry_after_says_how_long(client, demo):
    at = T0
    for _ in range(3):  # three free failures
        fail(client, "admin", A, at)
    for wait in (1, 2, 4, 8):
        refused = sign_in(client, "admin", DEMO_PASSWORD, A, at)  # even the right password waits
        assert refused.status_code == 429 and refused.headers["Retry-After"] == str(wait)
        assert refused.get_json()["code"] == "too_many_attempts"
        assert sign_in(client, "admin", "guess", A, at + timedelta(seconds=wait - 0.5)).status_code == 429
        at += timedelta(seconds=wait)
        fail(client, "admin", A, at)  # the wait is over: one more try (and a longer wait)
    assert sign_in(client, "admin", DEMO_PASSWORD, A, at).headers["Retry-After"] == "16"


def test_an_account_slowed_at_one_address_signs_in_at_another(client, demo):
    at = T0
    for wait in (0, 0, 0, 1, 2, 4):  # six failures, each as soon as allowed: now A waits 8 s
        at += timedelta(seconds=wait)
        fail(client, "admin", A, at)
    assert sign_in(client, "admin", DEMO_PASSWORD, A, at).status_code == 429
    assert sign_in(client, "admin", DEMO_PASSWORD, B, at).status_code == 201
    # and the wait at A is A's alone: the success at B changed nothing there
    assert sign_in(client, "admin", DEMO_PASSWORD, A, at).status_code == 429


def test_a_success_starts_the_address_afresh(client, demo):
    for _ in range(3):
        fail(client, "manager", A, T0)
    assert sign_in(client, "manager", DEMO_PASSWORD, A, T0 + timedelta(seconds=1)).status_code == 201
    for _ in range(3):
        fail(client, "manager", A, T0 + timedelta(seconds=2))
    assert sign_in(client, "manager", "guess", A, T0 + timedelta(seconds=2)).status_code == 429


def test_an_address_failing_on_many_accounts_waits_for_all_of_them(client, demo):
    accounts = ["admin", "manager", "auditor", "provider", "caregiver", "nobody"]
    for n in range(30):
        fail(client, accounts[n % len(accounts)], A, T0 + timedelta(seconds=30 * n // 10))  # 3 per pair at most
    refused = sign_in(client, "manager.dagang", DEMO_PASSWORD, A, T0 + timedelta(minutes=2))
    assert refused.status_code == 429
    # until the first of the 30 failures is 15 minutes old
    assert refused.headers["Retry-After"] == str(15 * 60 - 120)
    assert sign_in(client, "manager.dagang", DEMO_PASSWORD, A, T0 + timedelta(minutes=15)).status_code == 201
    assert sign_in(client, "manager.dagang", DEMO_PASSWORD, B, T0 + timedelta(minutes=2)).status_code == 201


def test_guessing_spread_over_many_addresses_spares_the_addresses_the_account_knows(client, demo):
    assert sign_in(client, "admin", DEMO_PASSWORD, B, T0).status_code == 201  # the admin's office
    at = T0 + timedelta(hours=1)
    for n in range(1, 11):  # a failure from each of ten addresses: none of them would wait on its own
        fail(client, "admin", f"192.0.2.{n}", at)
    stranger = "192.0.2.200"
    refused = sign_in(client, "admin", DEMO_PASSWORD, stranger, at)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert sign_in(client, "admin", DEMO_PASSWORD, B, at).status_code == 201  # the office is not slowed
    fail(client, "admin", "192.0.2.11", at + timedelta(seconds=1))  # an eleventh address: waits grow
    assert sign_in(client, "admin", DEMO_PASSWORD, stranger, at + timedelta(seconds=1)).headers["Retry-After"] == "2"
    assert sign_in(client, "admin", DEMO_PASSWORD, B, at + timedelta(seconds=1)).status_code == 201
    assert sign_in(client, "admin", DEMO_PASSWORD, stranger, at + timedelta(seconds=3)).status_code == 201


# --- the sign-in page -------------------------------------------------------------------------


def page_sign_in(client, username, password, at):
    with clock_at(at):
        page = client.get("/login")
        token = re.search(r'name="csrf-token" content="([^"]+)"', page.get_data(as_text=True)).group(1)
        return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def test_the_sign_in_page_says_how_long_to_wait_in_chinese(client, demo):
    for _ in range(3):
        assert page_sign_in(client, "manager", "guess-guess-guess", T0).status_code == 401
    refused = page_sign_in(client, "manager", DEMO_PASSWORD, T0)
    assert refused.status_code == 429
    assert "登录失败次数过多。请 1 秒后再试。" in refused.get_data(as_text=True)
    at = T0
    for wait in (1, 2, 4, 8, 16, 32, 64, 128):
        at += timedelta(seconds=wait)
        assert page_sign_in(client, "manager", "guess-guess-guess", at).status_code == 401
    refused = page_sign_in(client, "manager", DEMO_PASSWORD, at)  # 256 s: told in minutes, rounded up
    assert "登录失败次数过多。请 5 分钟后再试。" in refused.get_data(as_text=True)
