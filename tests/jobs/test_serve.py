"""`servicehub serve` (what `make run` starts): the pages and the scheduled jobs in one process; Ctrl-C stops both."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime

import sqlalchemy as sa

from tests.jobs.test_scheduler import database
from tests.support import free_port


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status


def _wait_for(check, what: str, process, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited ({process.returncode}) before {what}: {process.stdout.read().decode()}")
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout} s")


def test_serve_answers_pages_runs_detection_at_once_and_stops_on_ctrl_c(tmp_path):
    url = database(tmp_path)
    port = free_port()
    # The detection interval stays the default (120 s): a run within the test proves the first one is at the start.
    env = {**os.environ, "DATABASE_URL": url, "SERVICEHUB_INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "test"}
    env.pop("SERVICEHUB_DETECT_SECONDS", None)
    command = [os.path.join(os.path.dirname(sys.executable), "servicehub"), "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    engine = sa.create_engine(url)
    try:
        base = f"http://127.0.0.1:{port}"
        assert _wait_for(lambda: _get(f"{base}/healthz") == 200, "answer on /healthz", process)
        assert _get(f"{base}/api/v1/catalog/categories") == 200
        assert _get(f"{base}/login") == 200

        def detected():
            with engine.connect() as conn:
                return conn.execute(sa.text("SELECT holder, status FROM job_runs WHERE job_id = 'detect_visits'")).all()

        runs = _wait_for(detected, "detection run", process)
        with engine.connect() as conn:
            holder, expires = conn.execute(sa.text("SELECT holder, expires_at FROM scheduler_lease")).one()
        assert {h for h, _ in runs} == {holder} and runs[0][1] in ("running", "done")

        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    log = output.decode()
    assert process.returncode == 0, log[-3000:]
    assert "Stopped" in log and "Traceback" not in log, log[-3000:]
    with engine.connect() as conn:
        released = conn.execute(sa.text("SELECT expires_at FROM scheduler_lease")).scalar_one()
        statuses = {s for (s,) in conn.execute(sa.text("SELECT status FROM job_runs"))}
    engine.dispose()
    # The lease was given up at the stop (expired a second before it), so a scheduler started next takes over at once.
    assert datetime.fromisoformat(str(released)).replace(tzinfo=UTC) < datetime.fromisoformat(
        str(expires)).replace(tzinfo=UTC)
    assert statuses == {"done"}
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more
