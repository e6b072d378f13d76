"""The scheduler process: two started at once run each job slot once; a restart takes over without doubling."""

import os
import subprocess
import sys
import time

import flask_migrate
import sqlalchemy as sa

from servicehub import create_app
from tests.conftest import TEST_CONFIG


def database(tmp_path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(tmp_path)})
    with app.app_context():
        flask_migrate.upgrade()
    return url


def scheduler(url, tmp_path, seconds):
    env = {**os.environ, "DATABASE_URL": url, "SERVICEHUB_DETECT_SECONDS": "1",
           "SERVICEHUB_INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "test"}
    command = [os.path.join(os.path.dirname(sys.executable), "servicehub"), "scheduler", "--seconds", str(seconds)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finished(process) -> str:
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output.decode()[-2000:]
    return output.decode()


def runs(url):
    with sa.create_engine(url).connect() as conn:
        return conn.execute(sa.text("SELECT holder, slot, status FROM job_runs WHERE job_id = 'detect_visits'")).all()


def test_two_scheduler_processes_run_each_slot_once(tmp_path):
    url = database(tmp_path)
    first, second = scheduler(url, tmp_path, 5), scheduler(url, tmp_path, 5)
    logs = [finished(process) for process in (first, second)]
    rows = runs(url)
    assert len(rows) >= 3, rows
    assert len({slot for _, slot, _ in rows}) == len(rows)  # no slot twice
    assert len({holder for holder, _, _ in rows}) == 1  # one process held the lease; the other stood by
    assert {status for _, _, status in rows} == {"done"}, [line for log in logs for line in log.splitlines() if "rror" in line or "locked" in line]


def test_a_restarted_scheduler_takes_over_without_running_a_slot_twice(tmp_path):
    url = database(tmp_path)
    finished(scheduler(url, tmp_path, 4))
    before = runs(url)
    time.sleep(1.5)
    finished(scheduler(url, tmp_path, 4))
    rows = runs(url)
    assert len(rows) > len(before) and len({slot for _, slot, _ in rows}) == len(rows)
    assert len({holder for holder, _, _ in rows}) == 2


def test_a_slot_left_running_by_a_dead_process_is_run_again_once_by_the_next(tmp_path):
    # What a scheduler killed in the middle of a job leaves: the slot's row claimed and `running`, its work rolled
    # back with its transaction (make faults kills a real one; here the row is written as it would be).
    url = database(tmp_path)
    with sa.create_engine(url).begin() as conn:
        conn.execute(sa.text("INSERT INTO job_runs (job_id, slot, holder, started_at, status, result, error) "
                             "VALUES ('detect_visits', '2026-11-29 01:00:00.000000', 'gone:1', "
                             "'2026-11-29 01:00:00.100000', 'running', '{}', '')"))
    log = finished(scheduler(url, tmp_path, 3))
    rows = [row for row in runs(url) if str(row[1]).startswith("2026-11-29 01:00")]
    assert len(rows) == 1, runs(url)
    holder, _, status = rows[0]
    assert status == "done" and holder != "gone:1"
    assert "resumes detect_visits" in log
