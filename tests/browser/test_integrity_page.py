"""The auditor's integrity page in real Chromium, in Chinese: found from the menu, a checkpoint taken, the verify
run and everything holding; then someone with the database's keys lowers a delivered visit's minutes behind the
ledger's back, and the next verify names that visit."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from servicehub.auth.permissions import Principal, Role
from servicehub.database import clock_at
from servicehub.extensions import db
from servicehub.scheduling import services as scheduling
from servicehub.scheduling.models import Visit
from servicehub.visits import cards, confirmation, services
from tests.browser.conftest import ARTIFACTS, live_app, serving, sign_in
from tests.scheduling.test_pages import serve_district


@pytest.fixture(scope="module")
def delivered(tmp_path_factory):
    """The demo provider in service on a server of its own, today's roster published, one visit delivered."""
    directory = tmp_path_factory.mktemp("integrity-live")
    app = live_app(directory, SERVICEHUB_RUN_INLINE=True)
    with app.app_context():
        district = serve_district()
        run = scheduling.start_run(district.provider, district.own, district.today, time_limit_s=1)
        scheduling.publish_run(district.provider, run.id)
        visit = db.session.scalars(select(Visit).where(Visit.service_date == district.today,
                                                       Visit.status == "published", Visit.worker_id.is_not(None))
                                   .order_by(Visit.planned_start, Visit.id)).first()
        _, _, secret = cards.new_card(visit.recipient, services.SYSTEM)
        db.session.commit()
        caregiver = Principal(user_id=None, username=visit.worker.name, role=Role.CAREGIVER,
                              organisation_id=visit.organisation_id, worker_id=visit.worker_id)
        lat, lon = visit.recipient.lat + 0.00018, visit.recipient.lon
        with clock_at(visit.planned_start):
            services.check_in(caregiver, visit.id, str(uuid.uuid4()), lat, lon)
        left = visit.planned_start + timedelta(minutes=visit.duration_min)
        with clock_at(left):
            services.check_out(caregiver, visit.id, str(uuid.uuid4()), {
                "lat": lat, "lon": lon, "tasks": [item["code"] for item in visit.service_type.checklist],
                "confirmation_method": "code", "confirmation_code": confirmation.phone_code(secret, left),
                "satisfaction": 5, "notes": ""})
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
