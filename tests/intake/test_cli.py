"""The intake commands: demo applications once, and the jobs' work by hand."""

from sqlalchemy import func, select

from servicehub.extensions import db
from servicehub.intake.cli import DEMO_APPLICATIONS
from servicehub.intake.models import Application


def test_demo_applications_are_filed_once_in_the_towns_queues(app, runner, demo):
    first = runner.invoke(args=["demo", "applications"])
    assert first.exit_code == 0, first.output
    assert f"{len(DEMO_APPLICATIONS)} demo applications filed" in first.output
    again = runner.invoke(args=["demo", "applications"])
    assert "nothing filed" in again.output
    with app.app_context():
        rows = db.session.execute(select(Application.source, Application.status)).all()
        assert {s for s, _ in rows} >= {"public", "hotline", "grid", "phone"}
        assert ("hotline", "contacted") in rows and ("grid", "visited") in rows
        assert db.session.scalar(select(func.count(func.distinct(Application.town_id)))) > 1


def test_the_jobs_run_by_hand(runner, demo):
    for args, said in ((["intake", "discover"], "items filed by active discovery"),
                       (["intake", "escalate"], "applications escalated"), (["intake", "remind"], "documents reminded")):
        result = runner.invoke(args=args)
        assert result.exit_code == 0 and said in result.output, result.output
