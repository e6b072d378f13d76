"""The caregiver's writes, in the app: what a check-in and a check-out cost (seconds and SQL statements), on the demo
district with two years of history and today's rosters published, on SQLite and PostgreSQL.

Each check-in and check-out goes through `servicehub.visits.services` as a request would (the caregiver's principal,
an idempotency key, the phone's position ~20 m from the address, no confirmation), for every visit of today's
rosters in planned order. The same script runs on an older checkout of the code (it uses only what both have), so
the write path can be compared before and after a change on the same machine:

    .venv/bin/python bench/evv_writes.py --engine sqlite postgresql
    git worktree add /tmp/before <commit> && cd /tmp/before && \\
        PYTHONPATH=/tmp/before /work/main/.venv/bin/python /work/main/bench/evv_writes.py --engine sqlite postgresql

Numbers and what they mean: bench/README.md, "The caregiver's writes".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(url: str, directory: str) -> dict:
    """Prepare the district on `url`, then time every check-in and check-out of today's rosters."""
    import flask_migrate
    from sqlalchemy import event, select

    from servicehub import create_app
    from servicehub.auth.permissions import COMMAND_LINE, Principal, Role
    from servicehub.extensions import db
    from servicehub.registry.demo_loader import PARTS
    from servicehub.scheduling import services as scheduling
    from servicehub.scheduling.demo import serve_demo_district
    from servicehub.scheduling.models import Visit
    from servicehub.timeutil import district_today
    from servicehub.visits import services
    from servicehub.visits.history import write_demo_history
    from tests.support import load_demo_district

    app = create_app({"TESTING": True, "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url,
                      "INSTANCE_PATH": directory, "SERVICEHUB_RUN_INLINE": True})
    with app.app_context():
        flask_migrate.upgrade(directory=str(Path.cwd() / "migrations"))
        load_demo_district(PARTS)
        serve_demo_district()
        write_demo_history()
        today = district_today()
        for organisation_id in sorted(set(db.session.scalars(select(Visit.organisation_id).where(
                Visit.service_date == today)))):
            run = scheduling.start_run(COMMAND_LINE, organisation_id, today, time_limit_s=1)
            if run.status == "solved":
                scheduling.publish_run(COMMAND_LINE, run.id)
        visits = db.session.execute(select(Visit.id, Visit.organisation_id, Visit.worker_id)
                                    .where(Visit.service_date == today, Visit.status == "published")
                                    .order_by(Visit.planned_start, Visit.id)).all()
        places = {v.id: (v.recipient.lat + 0.00018, v.recipient.lon) for v in
                  db.session.scalars(select(Visit).where(Visit.id.in_([row[0] for row in visits])))}
        db.session.remove()
        statements = [0]

        def count(*_args, **_kwargs):
            statements[0] += 1

        event.listen(db.engine, "before_cursor_execute", count)
        timings = {"check_in": [], "check_out": []}
        counted = {"check_in": [], "check_out": []}
        for visit_id, organisation_id, worker_id in visits:
            caregiver = Principal(user_id=None, username=f"worker {worker_id}", role=Role.CAREGIVER,
                                  organisation_id=organisation_id, worker_id=worker_id)
            lat, lon = places[visit_id]
            check_out = {"lat": lat, "lon": lon, "at": None, "tasks": [], "confirmation_method": "none",
                         "confirmation_code": None, "signature": None, "satisfaction": 5, "notes": ""}
            for name, call, arguments in (("check_in", services.check_in, (lat, lon)),
                                          ("check_out", services.check_out, (check_out,))):
                statements[0] = 0
                started = time.perf_counter()
                call(caregiver, visit_id, str(uuid.uuid4()), *arguments)
                timings[name].append(time.perf_counter() - started)
                counted[name].append(statements[0])
                db.session.remove()
        event.remove(db.engine, "before_cursor_execute", count)
    return {name: {"calls": len(values), "median_ms": round(1000 * statistics.median(values), 1),
                   "p95_ms": round(1000 * _percentile(values, 0.95), 1),
                   "statements": round(statistics.mean(counted[name]), 1)} for name, values in timings.items()}


def one_engine(engine: str) -> dict:
    """Run `measure` in a child process on a fresh database of the engine (dropped afterwards)."""
    directory = tempfile.mkdtemp(prefix="evv-writes-")
    if engine == "sqlite":
        url = f"sqlite:///{directory}/bench.db"
    else:
        name = f"servicehub_evv_writes_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        out = subprocess.run([sys.executable, __file__, "--child", url, directory], capture_output=True, text=True,
                             check=True, env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(Path.cwd()))})
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if engine != "sqlite":
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    for engine in args.engine:
        result = one_engine(engine)
        for name, numbers in result.items():
            print(f"{commit} {engine:10} {name:9} calls {numbers['calls']:4}  median {numbers['median_ms']:6.1f} ms  "
                  f"p95 {numbers['p95_ms']:6.1f} ms  statements {numbers['statements']:5.1f}")


if __name__ == "__main__":
    main()
