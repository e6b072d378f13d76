"""Fault drills (issue 10, item 4), `make faults`: real processes on the local PostgreSQL, killed or cut off.

- The app (gunicorn) killed with SIGKILL in the middle of publishing a roster, and of an import: after a restart
  the database holds none of the change, and doing it again writes all of it once.
- PostgreSQL stopped for 30 s: meanwhile the app answers 503 with a clear message (API, pages, /healthz); once the
  server is back, it recovers by itself, without a restart.
- The scheduler process killed in the middle of a job: the next one runs that job's slot again, once.

"In the middle" is made exact, not left to timing: a connection of the test's own locks a table the change writes
last, the test waits until PostgreSQL shows the app's transaction holding its first writes and waiting for that
lock, and then kills. These drills stop the shared PostgreSQL server, so they never run inside `make test`
(marker `faults`, deselected by default); run them alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import flask_migrate
import pytest
import requests
import sqlalchemy as sa

from servicehub import create_app
from servicehub.config import data_key_from_instance, ledger_key_from_instance
from servicehub.extensions import db
from tests.conftest import TEST_CONFIG
from tests.imports.support import recipient_rows, xlsx
from tests.support import Gunicorn, create_demo_accounts, fresh_database, load_demo_district

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parent.parent.parent
CLUSTERS = Path("/etc/postgresql")


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    """A PostgreSQL database with the demo district in service (matched, accepted, visits generated), an API
    token per demo role, and the environment the app's processes run with (production mode)."""
    from servicehub.auth import services as auth
    from servicehub.registry.demo_loader import PARTS
    from servicehub.scheduling.demo import serve_demo_district

    directory = tmp_path_factory.mktemp("faults")
    with fresh_database("postgresql", directory) as url:
        app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(directory)})
        with app.app_context():
            flask_migrate.upgrade()
            load_demo_district(PARTS)
            serve_demo_district()
            users = create_demo_accounts()
            tokens = {name: {"Authorization": f"Bearer {auth.issue_token(user, name='faults').secret}"}
                      for name, user in users.items()}
            organisation = users["provider"].organisation_id
            db.session.remove()
            db.engine.dispose()
        env = {"DATABASE_URL": url, "SERVICEHUB_ENV": "production", "SECRET_KEY": "f" * 16 + os.urandom(16).hex(),
               "SERVICEHUB_DATA_KEY": data_key_from_instance(str(directory)), "SERVICEHUB_SECURE_COOKIES": "1",
               "SERVICEHUB_LEDGER_KEY": ledger_key_from_instance(str(directory)), "SERVICEHUB_INSTANCE_PATH": str(directory)}
        yield {"url": url, "env": env, "tokens": tokens, "organisation": organisation, "directory": directory}


@pytest.fixture
def server(district, tmp_path):
    served = Gunicorn(district["env"], tmp_path / "gunicorn.log", workers=2)
    served.start()
    yield served
    served.stop()


@pytest.fixture
def locker(district):
    """A connection of the test's own, for taking locks and watching the server's activity."""
    engine = sa.create_engine(district["url"], isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def scalar(district, sql: str, **params):
    engine = sa.create_engine(district["url"])
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()


def wait_until(condition, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(interval)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def writing_and_waiting(locker, written: str, waiting_for: str):
    """The pid of a backend whose transaction has written to `written` and waits for a lock on `waiting_for`."""
    return locker.execute(sa.text(
        "SELECT w.pid FROM pg_locks w JOIN pg_locks h ON h.pid = w.pid "
        "WHERE NOT w.granted AND w.relation = CAST(:waiting AS regclass) "
        "AND h.granted AND h.mode = 'RowExclusiveLock' AND h.relation = CAST(:written AS regclass)"),
        {"waiting": waiting_for, "written": written}).scalar()


def in_background(call):
    """Start a request in a thread (it will lose its connection when the server is killed); a join function."""
    import threading

    outcome = {}

    def run():
        try:
            outcome["response"] = call()
        except requests.RequestException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join():
        thread.join(timeout=60)
        return outcome

    return join


def gone(locker, pid: int) -> bool:
    return locker.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid}).scalar() == 0


# --- the app killed in the middle of a change ----------------------------------------------------------------------


def test_killed_while_publishing_a_roster_the_day_is_published_whole_or_not_at_all(district, server, locker):
    provider, organisation = district["tokens"]["provider"], district["organisation"]
    day = scalar(district, "SELECT min(service_date) FROM visits WHERE organisation_id = :o AND status = 'planned' "
                           "AND service_date > CURRENT_DATE", o=organisation)
    run = requests.post(f"{server.host}/api/v1/schedule-runs", headers=provider, timeout=30,
                        json={"organisation_id": organisation, "date": day.isoformat(), "time_limit_s": 2})
    assert run.status_code == 202, run.text
    run_id = run.json()["id"]
    wait_until(lambda: requests.get(f"{server.host}/api/v1/schedule-runs/{run_id}", headers=provider,
                                    timeout=10).json()["status"] == "solved", 60, "the run solved")
    day_state = ("SELECT string_agg(id || ':' || status || ':' || coalesce(worker_id, 0), ',' ORDER BY id) "
                 "FROM visits WHERE organisation_id = :o AND service_date = :d")
    before = scalar(district, day_state, o=organisation, d=day)

    # The roster version is written after the visits: holding it back stops the publication half-way.
    locker.execute(sa.text("BEGIN"))
    locker.execute(sa.text("LOCK TABLE roster_versions IN EXCLUSIVE MODE"))
    join = in_background(lambda: requests.post(f"{server.host}/api/v1/schedule-runs/{run_id}/publish",
                                               headers=provider, json={}, timeout=60))
    pid = wait_until(lambda: writing_and_waiting(locker, "visits", "roster_versions"), 30,
                     "the publication holding its visit updates, waiting to write the roster version")
    server.kill()
    locker.execute(sa.text("COMMIT"))
    assert "error" in join(), "the request was answered: the kill came too late"
    wait_until(lambda: gone(locker, pid), 30, "the killed request's transaction ended")

    server.start()
    assert scalar(district, day_state, o=organisation, d=day) == before  # none of it
    assert scalar(district, "SELECT count(*) FROM roster_versions WHERE organisation_id = :o AND service_date = :d",
                  o=organisation, d=day) == 0
    assert scalar(district, "SELECT status FROM schedule_runs WHERE id = :r", r=run_id) == "solved"
    published = requests.post(f"{server.host}/api/v1/schedule-runs/{run_id}/publish", headers=provider, json={},
                              timeout=60)
    assert published.status_code == 200, published.text
    assert scalar(district, "SELECT count(*) FROM roster_versions WHERE organisation_id = :o AND service_date = :d",
                  o=organisation, d=day) == 1
    assert scalar(district, "SELECT count(*) FROM visits WHERE organisation_id = :o AND service_date = :d "
                            "AND status = 'published'", o=organisation, d=day) > 0


def test_killed_while_importing_the_file_is_imported_whole_or_not_at_all(district, server, locker):
    manager = district["tokens"]["manager"]
    content = xlsx(recipient_rows(300, name="导入演练"))
    before = scalar(district, "SELECT count(*) FROM recipients")

    def upload():
        return requests.post(f"{server.host}/api/v1/imports", headers=manager, timeout=120,
                             data={"kind": "recipients", "dry_run": "false"},
                             files={"file": ("名单.xlsx", content, "application/octet-stream")})

    # Every table an import writes is written from its first row on, so there is no table to hold it back with:
    # the kill comes once its transaction holds written recipients, well before its 300 rows are done.
    join = in_background(upload)
    pid = wait_until(lambda: locker.execute(sa.text(
        "SELECT pid FROM pg_locks WHERE granted AND mode = 'RowExclusiveLock' "
        "AND relation = CAST('recipients' AS regclass) AND pid <> pg_backend_pid()")).scalar(), 30,
        "the import writing recipients")
    time.sleep(0.3)  # well inside a 300-row import (about 2 ms a row)
    server.kill()
    assert "error" in join(), "the import was answered: the kill came too late"
    wait_until(lambda: gone(locker, pid), 30, "the killed import's transaction ended")
    assert scalar(district, "SELECT count(*) FROM recipients") == before  # none of it

    server.start()
    response = upload()
    assert response.status_code == 201, response.text[:2000]
    assert scalar(district, "SELECT count(*) FROM recipients") == before + 300  # all of it, once


# --- PostgreSQL stopped for 30 s ----------------------------------------------------------------------------------


def cluster() -> str:
    versions = sorted(p.name for p in CLUSTERS.iterdir()) if CLUSTERS.is_dir() else []
    if not versions or not Path("/usr/bin/pg_ctlcluster").exists():
        pytest.fail("this drill stops and starts the local PostgreSQL with pg_ctlcluster, which is not here")
    return versions[-1]


def postgresql(action: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", cluster(), "main", action,
                    *(["-m", "fast"] if action == "stop" else [])], check=True, capture_output=True, timeout=120)


def test_postgresql_stopped_for_30_s_gives_a_clear_503_then_the_app_recovers_by_itself(district, server):
    manager = {**district["tokens"]["manager"], "Accept-Language": "en"}
    assert requests.get(f"{server.host}/api/v1/recipients?page_size=1", headers=manager, timeout=10).status_code == 200
    seen = []
    postgresql("stop")
    try:
        stopped = time.monotonic()
        while time.monotonic() - stopped < 30:
            api = requests.get(f"{server.host}/api/v1/recipients?page_size=1", headers=manager, timeout=15)
            health = requests.get(f"{server.host}/healthz", timeout=15)
            page = requests.get(f"{server.host}/apply", timeout=15)
            seen.append((api.status_code, health.status_code, page.status_code))
            assert api.status_code == 503, api.text[:500]
            problem = api.json()
            assert problem["code"] == "database_unavailable" and "nothing was changed" in problem["message"]
            assert api.headers["Retry-After"] == "30"
            assert health.status_code == 503 and health.json()["status"] == "degraded"
            assert page.status_code == 503 and "text/html" in page.headers["Content-Type"]
            assert "数据库暂时无法访问" in page.text  # the page, in the district's language
            time.sleep(2)
    finally:
        postgresql("start")
    assert len(seen) >= 5
    # Back without restarting the app: the pool's dead connections are noticed and replaced.
    wait_until(lambda: requests.get(f"{server.host}/healthz", timeout=10).status_code == 200, 30, "/healthz 200",
               interval=0.5)
    assert requests.get(f"{server.host}/api/v1/recipients?page_size=1", headers=manager, timeout=10).status_code == 200
    assert requests.get(f"{server.host}/apply", timeout=10).status_code == 200


# --- the scheduler killed in the middle of a job --------------------------------------------------------------------


def scheduler(district, log: Path) -> subprocess.Popen:
    env = {**os.environ, **district["env"], "SERVICEHUB_DETECT_SECONDS": "3"}
    with log.open("a") as out:
        return subprocess.Popen([str(Path(sys.executable).with_name("servicehub")), "scheduler"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def test_a_scheduler_killed_in_the_middle_of_a_job_has_the_slot_run_once_by_the_next(district, locker, tmp_path):
    runs = ("SELECT holder, status FROM job_runs WHERE job_id = 'detect_visits' AND slot = :s")
    # The detection job reads the visits first: while this lock is held, a slot's job is claimed and stuck.
    locker.execute(sa.text("BEGIN"))
    locker.execute(sa.text("LOCK TABLE visits IN ACCESS EXCLUSIVE MODE"))
    first = scheduler(district, tmp_path / "scheduler.log")
    try:
        slot = wait_until(lambda: locker.execute(sa.text(
            "SELECT slot FROM job_runs WHERE job_id = 'detect_visits' AND status = 'running'")).scalar(), 60,
            "a detection slot claimed and running")
        wait_until(lambda: locker.execute(sa.text(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = CAST('visits' AS regclass)")).scalar(),
            30, "the job waiting for the visits")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        locker.execute(sa.text("COMMIT"))
    assert scalar(district, runs.replace("holder, status", "status"), s=slot) == "running"  # left behind

    second = scheduler(district, tmp_path / "scheduler.log")
    try:
        # The dead process's lease runs out (30 s), then the new holder resumes the slot.
        wait_until(lambda: scalar(district, runs.replace("holder, status", "status"), s=slot) == "done", 90,
                   "the interrupted slot run again")
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=60)
    assert scalar(district, "SELECT count(*) FROM job_runs WHERE job_id = 'detect_visits' AND slot = :s",
                  s=slot) == 1  # once
    assert "resumes detect_visits" in (tmp_path / "scheduler.log").read_text()
