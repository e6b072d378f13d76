"""Issue 19: a caregiver reads nothing organisation-wide of planning (no runs, plans, roster versions, settings,
days off, no colleague's route), and a town manager no organisation's whole day (runs and plans)."""

from sqlalchemy import select

from servicehub.auth.models import User
from servicehub.auth.permissions import COMMAND_LINE
from servicehub.extensions import db
from servicehub.scheduling import services
from servicehub.scheduling.models import Visit
from tests.scheduling.fixtures import district_today


def _published_today(app, served):
    """Today's roster published; the demo caregiver is on a worker with visits today; (run id, a colleague)."""
    with app.app_context():
        run = services.start_run(COMMAND_LINE, served["org"], district_today(), time_limit_s=0.3)
        services.publish_run(COMMAND_LINE, run.id)
        workers = db.session.scalars(select(Visit.worker_id).where(
            Visit.service_date == district_today(), Visit.worker_id.is_not(None)).distinct()).all()
        user = db.session.scalar(select(User).where(User.username == "caregiver"))
        user.worker_id = workers[0]
        db.session.commit()
        colleague = next(w for w in served["workers"] if w != workers[0])
        return run.id, colleague


def test_a_caregiver_reads_nothing_organisation_wide_of_planning(app, served, client):
    run_id, colleague = _published_today(app, served)
    today = district_today().isoformat()
    me = served["caregiver"]
    for path, query in (("/api/v1/schedule-runs", {}), (f"/api/v1/schedule-runs/{run_id}", {}),
                        (f"/api/v1/schedule-runs/{run_id}/plan", {}),
                        ("/api/v1/roster-versions", {"organisation_id": served["org"], "date": today}),
                        (f"/api/v1/organisations/{served['org']}/schedule-settings", {}),
                        ("/api/v1/visit-exceptions", {}),
                        ("/api/v1/rosters", {"date": today, "worker_id": colleague})):
        response = client.get(path, query_string=query, headers=me)
        assert response.status_code == 403, (path, response.status_code)
    assert client.get("/schedule", query_string={"date": today}, headers=me).status_code == 403
    # Their own route and visits still answer, and hold no colleague's stop.
    own = client.get("/api/v1/rosters", query_string={"date": today}, headers=me)
    assert own.status_code == 200
    visits = client.get("/api/v1/visits", query_string={"worker_id": colleague}, headers=me).get_json()
    assert visits == []
    # The provider still reads all of it.
    for path in (f"/api/v1/schedule-runs/{run_id}/plan", f"/api/v1/organisations/{served['org']}/schedule-settings"):
        assert client.get(path, headers=served["provider"]).status_code == 200


def test_a_town_manager_reads_no_organisations_whole_day(app, served, client):
    run_id, _colleague = _published_today(app, served)
    town = served["manager.dagang"]
    assert client.get("/api/v1/schedule-runs", headers=town).get_json() == []
    for path in (f"/api/v1/schedule-runs/{run_id}", f"/api/v1/schedule-runs/{run_id}/plan"):
        assert client.get(path, headers=town).status_code == 404
    page = client.get("/schedule", query_string={"organisation_id": served["org"]}, headers=town)
    assert page.status_code == 404
    # The district manager does.
    assert client.get(f"/api/v1/schedule-runs/{run_id}/plan", headers=served["manager"]).status_code == 200
    assert client.get("/schedule", query_string={"organisation_id": served["org"]},
                      headers=served["manager"]).status_code == 200
