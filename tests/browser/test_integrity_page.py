"""The auditor's integrity page in real Chromium, in Chinese: found from the menu, a checkpoint taken, the verify
run and everything holding; then someone with the database's keys lowers a delivered visit's minutes behind the
ledger's back, and the next verify names that visit."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from servicehub.extensions import db
from tests.browser.conftest import ARTIFACTS, live_app, serving, sign_in
from tests.browser.recorded import first_published_visit, record_cleanly


@pytest.fixture(scope="module")
def delivered(tmp_path_factory):
    """The demo provider in service on a server of its own, today's roster published, one visit delivered."""
    directory = tmp_path_factory.mktemp("integrity-live")
    app = live_app(directory, SERVICEHUB_RUN_INLINE=True)
    with app.app_context():
        visit, secret = first_published_visit()
        record_cleanly(visit, secret)
        visit_id = visit.id
    with serving(app) as server:
        yield server, visit_id


@pytest.mark.browser
def test_an_auditor_checkpoints_and_verifies_and_a_change_behind_the_ledger_is_named(page, delivered):
    server, visit_id = delivered
    sign_in(page, server, "auditor")
    page.wait_for_url(f"{server.url}/")
    page.get_by_role("link", name="完整性校验").click()
    page.wait_for_url(f"{server.url}/integrity")
    assert "BEGIN PUBLIC KEY" in page.locator("[data-testid=public-key]").inner_text()
    assert page.locator("[data-testid=checkpoint-file]").count() == 0

    page.click("[data-testid=take-checkpoint]")
    page.wait_for_load_state()
    assert "已生成检查点" in page.locator(".flash.success").inner_text()
    assert page.locator("[data-testid=checkpoint-file]").count() == 1

    page.click("[data-testid=verify]")
    page.wait_for_load_state()
    assert "全部一致" in page.locator("[data-testid=verify-ok]").inner_text()
    assert "1 个检查点" in page.locator("[data-testid=verify-ok]").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "integrity-holds.png"), full_page=True)

    with server.app.app_context(), db.engine.begin() as conn:  # visits are not append-only: no trigger to drop
        conn.execute(sa.text("UPDATE visits SET delivery_service_s = 60 WHERE id = :id"), {"id": visit_id})
    page.click("[data-testid=verify]")
    page.wait_for_load_state()
    assert "发现 1 处问题" in page.locator("[data-testid=verify-broken]").inner_text()
    assert f"服务 {visit_id}：delivery_service_s 为 60.0，台账表明应为" in page.locator("[data-testid=problems]").inner_text()
    page.screenshot(path=str(ARTIFACTS / "integrity-broken.png"), full_page=True)
