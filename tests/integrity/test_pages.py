"""The integrity page: an auditor sees the public key, takes a checkpoint, downloads it and the key, runs the
verify and reads what it found; every step is in the audit log; managers, providers and caregivers may not open
it; a tampered record shows as a problem on the page. The nightly job writes one checkpoint per night."""

from __future__ import annotations

from datetime import UTC, datetime
from html import unescape

import sqlalchemy as sa

from servicehub.auth.models import AuditLog
from servicehub.extensions import db
from servicehub.integrity import checkpoints
from servicehub.jobs import tasks
from tests.integrity.test_tamper import tampering
from tests.registry.test_pages import csrf, signed_in
from tests.visits.evv import deliver


def actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(AuditLog.action).where(AuditLog.entity_type == "integrity")
                                       .order_by(AuditLog.sequence)))


def test_an_auditor_takes_downloads_and_verifies_checkpoints(app, served, client, day, tmp_path):
    app.config["SERVICEHUB_CHECKPOINT_DIR"] = str(tmp_path / "checkpoints")
    try:
        deliver(client, served, day["mine"][0])
        auditor = signed_in(app, "auditor")
        page = auditor.get("/integrity")
        html = unescape(page.get_data(as_text=True))
        assert page.status_code == 200 and "BEGIN PUBLIC KEY" in html and "data-testid=\"key-id\"" in html
        taken = auditor.post("/integrity/checkpoint", data={"csrf_token": csrf(auditor)}, follow_redirects=True)
        html = unescape(taken.get_data(as_text=True))
        (name,) = [p.name for p in (tmp_path / "checkpoints").iterdir()]
        assert name in html and 'data-testid="checkpoint-file"' in html
        key = auditor.get("/integrity/public-key.pem")
        assert key.status_code == 200 and "attachment" in key.headers["Content-Disposition"]
        public = checkpoints.load_public_key(key.get_data())
        with auditor.get(f"/integrity/checkpoints/{name}") as downloaded:
            assert downloaded.status_code == 200
            payload = checkpoints.open_signed(downloaded.get_data(as_text=True), public)
        assert [c["records"] for c in payload["chains"] if c["organisation_id"] == served["org"]] == [2]
        assert auditor.get("/integrity/checkpoints/..%2Fledger_key").status_code == 404
        assert auditor.get("/integrity/checkpoints/ledger_key").status_code == 404
        verified = auditor.post("/integrity/verify", data={"csrf_token": csrf(auditor)})
        assert verified.status_code == 200 and 'data-testid="verify-ok"' in verified.get_data(as_text=True)
        with tampering(app) as conn:
            conn.execute(sa.text("UPDATE visits SET delivery_service_s = 1 WHERE id = :id"), {"id": day["mine"][0].id})
        broken = unescape(auditor.post("/integrity/verify", data={"csrf_token": csrf(auditor)}).get_data(as_text=True))
        assert 'data-testid="verify-broken"' in broken
        assert f"服务 {day['mine'][0].id}：delivery_service_s 为 1.0，台账表明应为" in broken  # in the page's language
        assert actions(app) == ["checkpoint_taken", "checkpoint_downloaded", "integrity_verified", "integrity_verified"]
        assert auditor.post("/integrity/verify").status_code == 400  # no CSRF token
        for role in ("manager", "provider", "caregiver"):
            other = signed_in(app, role)
            assert other.get("/integrity").status_code == 403
            assert other.get(f"/integrity/checkpoints/{name}").status_code == 403
            assert other.post("/integrity/checkpoint", data={"csrf_token": csrf(other)}).status_code == 403
    finally:
        app.config.pop("SERVICEHUB_CHECKPOINT_DIR")


def test_the_nightly_job_writes_one_checkpoint_a_night(app, tmp_path):
    app.config["SERVICEHUB_CHECKPOINT_DIR"] = str(tmp_path)
    tasks.APP = app
    try:
        night = datetime(2026, 12, 7, 19, 15, tzinfo=UTC)
        tasks.nightly_checkpoint(night)
        tasks.nightly_checkpoint(night)  # the same night fired twice (two schedulers, a restart)
        assert len(list(tmp_path.iterdir())) == 1
    finally:
        app.config.pop("SERVICEHUB_CHECKPOINT_DIR")
        tasks.APP = None
