"""Load test (issue 10, item 3): caregivers fetching today's roster and checking in and out, managers listing and
matching, auditors pulling reports, against gunicorn on 127.0.0.1 and PostgreSQL, on the 20,000-recipient scale
demo with a year of records. Targets: roster and check-in p95 under 100 ms at 200 requests/s on 2 cores, no
errors.

    make load                                                 # = .venv/bin/python bench/load.py --markdown
    .venv/bin/python bench/load.py --rate 200 --duration 120 --web-workers 5 --markdown
    .venv/bin/python bench/load.py --rate 300 --duration 60             # find where it bends
    # defaults: --keep /tmp/bench_kpis --organisations 20 --time-limit 5 --rate 200 --duration 120

Three databases on the local PostgreSQL, each made once and reused:

1. `servicehub_bench_kpis`: the district and its year of history, as bench/kpis.py prepares it (the same command;
   about 16 minutes the first time, kept in --keep).
2. `servicehub_load_base`: a copy of it (CREATE DATABASE … TEMPLATE), migrated to the code's head, with today
   planned and published by the real solver for the --organisations organisations with the most visits today, an
   account and an API token for each of their caregivers on duty, district and town managers, and ANALYZE. Made
   again when the day has changed (rosters are today's) or --rebuild.
3. `servicehub_load`: a fresh copy of the base for each run (a few seconds), so that every run starts with the
   same day of unvisited stops, and dropped afterwards unless --keep-run.

The run: gunicorn with the shipped settings (deploy/gunicorn.conf.py) in production mode, then locust, headless,
with bench/locustfile.py for --duration seconds at --rate requests a second in all (fixed numbers of users, each
at a fixed rate; statistics from when every user has started). It prints one JSON line (per-endpoint count,
failures, median, p95, p99, the achieved rate, the machine's CPU use) and, with --markdown, the rows of the table
in bench/README.md. The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import secrets
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import kpis
import sqlalchemy as sa
from support import make_app

from servicehub.config import DEFAULT_TIMEZONE
from tests.support import Gunicorn

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BASE_DB, RUN_DB = "servicehub_load_base", "servicehub_load"
TARGETS_MS = {"roster": 100, "check-in": 100}  # p95
MANAGER_TOWNS = 4  # town managers besides the district manager


# --- the databases --------------------------------------------------------------------------------------------


def pg_args(args, database: str) -> argparse.Namespace:
    """What bench/kpis.py's PostgreSQL helpers take."""
    return argparse.Namespace(pg_admin_url=args.pg_admin_url, pg_database=database)


def copy_database(args, source: str, target: str) -> None:
    """target := a fresh copy of source (nobody may be connected to source)."""
    kpis.pg_admin(pg_args(args, target), f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
    kpis.pg_admin(pg_args(args, target), f'CREATE DATABASE "{target}" TEMPLATE "{source}"')


def district(args) -> tuple[str, dict]:
    """The 20,000-recipient district with its year of history, prepared by bench/kpis.py (reused when kept)."""
    kargs = kpis.build_parser().parse_args(["--engine", "postgresql", "--keep", str(args.keep),
                                            "--pg-database", args.district_database, "--pg-admin-url",
                                            args.pg_admin_url])
    kargs.engine = "postgresql"
    args.keep.mkdir(parents=True, exist_ok=True)
    return kpis.prepared(kargs, "postgresql", args.keep)


def base(args, district_meta: dict) -> dict:
    """The load test's starting point: today planned and published, accounts with tokens (made once a day)."""
    meta_path = args.keep / f"{BASE_DB}.json"
    today = district_today_iso()
    if meta_path.exists() and kpis.pg_exists(pg_args(args, BASE_DB)) and not args.rebuild:
        meta = json.loads(meta_path.read_text())
        if (meta.get("today"), meta.get("organisations_asked"), meta.get("district_prepared_at")) == (
                today, args.organisations, district_meta["prepared_at"]):
            return meta
    meta_path.unlink(missing_ok=True)
    copy_database(args, args.district_database, BASE_DB)
    started = time.perf_counter()
    command = [sys.executable, __file__, "--stage", "base", "--keep", str(args.keep), "--organisations",
               str(args.organisations), "--time-limit", str(args.time_limit), "--pg-admin-url", args.pg_admin_url]
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode:
        sys.exit(f"preparing {BASE_DB} failed:\n{finished.stderr[-6000:]}")
    meta = json.loads(finished.stdout.strip().splitlines()[-1])
    meta.update(auditor=district_meta["token"], month=district_meta["month"], organisations_asked=args.organisations,
                district_prepared_at=district_meta["prepared_at"], seconds_total=round(time.perf_counter() - started))
    meta_path.write_text(json.dumps(meta, ensure_ascii=False))
    return meta


def district_today_iso() -> str:
    """Today in the district's time zone (what the rosters are for)."""
    return datetime.now(ZoneInfo(os.environ.get("SERVICEHUB_TIMEZONE", DEFAULT_TIMEZONE))).date().isoformat()


def prepare_base(args) -> dict:
    """In a process of its own: migrate the copy, plan and publish today, make the accounts."""
    import flask_migrate

    from servicehub.auth.audit import Actor, acting_as
    from servicehub.extensions import db

    url = pg_url(args, BASE_DB)
    app = make_app(url, str(args.keep), SERVICEHUB_RUN_INLINE=True)
    seconds = {}
    with app.app_context(), acting_as(Actor("cli:bench-load")):
        mark = time.perf_counter()
        flask_migrate.upgrade()
        seconds["migrate"] = round(time.perf_counter() - mark, 1)
        mark = time.perf_counter()
        published = publish_today(args.organisations, args.time_limit)
        seconds["plan_and_publish"] = round(time.perf_counter() - mark, 1)
        mark = time.perf_counter()
        accounts = make_accounts(published["organisations"])
        seconds["accounts"] = round(time.perf_counter() - mark, 1)
        db.session.remove()
        mark = time.perf_counter()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
        seconds["vacuum_analyze"] = round(time.perf_counter() - mark, 1)
        db.engine.dispose()
    return {**published, **accounts, "seconds": seconds}


def publish_today(organisations: int, time_limit: float) -> dict:
    """Plan today with the solver and publish it, for the organisations with the most visits today."""
    from servicehub.auth.permissions import COMMAND_LINE
    from servicehub.extensions import db
    from servicehub.scheduling import services as scheduling
    from servicehub.scheduling.models import Visit, VisitStatus
    from servicehub.timeutil import district_today

    today = district_today()
    scheduling.generate_visits(COMMAND_LINE, date_from=today, date_to=today)
    busiest = db.session.execute(
        sa.select(Visit.organisation_id, sa.func.count()).where(Visit.service_date == today,
                                                              Visit.status == VisitStatus.PLANNED)
        .group_by(Visit.organisation_id).order_by(sa.func.count().desc(), Visit.organisation_id)
        .limit(organisations)).all()
    runs = []
    for organisation_id, visits in busiest:
        run = scheduling.start_run(COMMAND_LINE, organisation_id, today, time_limit_s=time_limit)
        if run.status != "solved":
            raise SystemExit(f"organisation {organisation_id}: the run ended {run.status}: {run.error}")
        versions = scheduling.publish_run(COMMAND_LINE, run.id)
        runs.append({"organisation_id": organisation_id, "visits": visits, "placed": versions[0].visits,
                     "unplaced": versions[0].unplaced, "solve_s": run.seconds})
        db.session.remove()
    return {"today": today.isoformat(), "organisations": [r["organisation_id"] for r in runs], "runs": runs,
            "published": sum(r["placed"] for r in runs), "unplaced": sum(r["unplaced"] for r in runs)}


def make_accounts(organisation_ids: list[int]) -> dict:
    """A caregiver account and token for every worker with published visits today; district and town managers."""
    from servicehub.auth import services as auth
    from servicehub.auth.models import User
    from servicehub.auth.permissions import Role
    from servicehub.extensions import db
    from servicehub.registry.models import Area, Recipient
    from servicehub.scheduling.models import Visit, VisitStatus
    from servicehub.timeutil import district_today

    password = "bench-load-" + secrets.token_hex(8)
    hashed = auth._hash(password)  # one hash for all: hashing is what sign-in measures, not this test
    on_duty = db.session.execute(
        sa.select(Visit.worker_id, Visit.organisation_id, sa.func.count()).where(
            Visit.service_date == district_today(), Visit.status == VisitStatus.PUBLISHED,
            Visit.organisation_id.in_(organisation_ids), Visit.worker_id.is_not(None))
        .group_by(Visit.worker_id, Visit.organisation_id).order_by(Visit.worker_id)).all()
    db.session.execute(sa.insert(User), [
        {"username": f"load-caregiver-{worker_id}", "role": Role.CAREGIVER.value, "display_name": f"load {worker_id}",
         "organisation_id": organisation_id, "worker_id": worker_id, "password_hash": hashed}
        for worker_id, organisation_id, _ in on_duty])
    db.session.commit()
    users = {u.worker_id: u for u in db.session.scalars(sa.select(User).where(User.username.like("load-caregiver-%")))}
    caregivers = [{"worker_id": worker_id, "visits": visits,
                   "token": auth.issue_token(users[worker_id], name="load", ttl_days=30).secret}
                  for worker_id, _, visits in on_duty]
    towns = db.session.execute(
        sa.select(Area.code, sa.func.count(Recipient.id)).join(Recipient, Recipient.town_id == Area.id)
        .group_by(Area.code).order_by(sa.func.count(Recipient.id).desc()).limit(MANAGER_TOWNS)).all()
    managers = []
    for town in [None, *(code for code, _ in towns)]:
        user = auth.create_user(username=f"load-manager-{town or 'district'}", role=Role.MANAGER.value,
                                password=password, town=town)
        managers.append({"town": town, "token": auth.issue_token(user, name="load", ttl_days=30).secret})
    return {"caregivers": caregivers, "managers": managers}


def pg_url(args, database: str) -> str:
    return kpis.pg_url(pg_args(args, database))


# --- the run ----------------------------------------------------------------------------------------------------


def serve(args, run_dir: Path) -> Gunicorn:
    """gunicorn with the shipped settings in production mode; returns when /healthz answers."""
    from servicehub.config import data_key_from_instance, ledger_key_from_instance

    server = Gunicorn({"DATABASE_URL": pg_url(args, RUN_DB), "SERVICEHUB_ENV": "production",
                       "SECRET_KEY": secrets.token_hex(32), "SERVICEHUB_DATA_KEY": data_key_from_instance(str(args.keep)),
                       "SERVICEHUB_LEDGER_KEY": ledger_key_from_instance(str(args.keep)),
                       "SERVICEHUB_SECURE_COOKIES": "1", "SERVICEHUB_INSTANCE_PATH": str(run_dir),
                       # each request's method, path, status and time in the app (µs): the server's own side
                       "GUNICORN_CMD_ARGS": "--access-logformat '%(m)s %(U)s %(s)s %(D)s'"},
                      run_dir / "gunicorn.log", workers=args.web_workers, access_log=run_dir / "access.log")
    server.start()
    return server


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def process_cpu(gunicorn_pid: int) -> dict[str, float]:
    """CPU seconds used so far by gunicorn (its master, workers alive and workers already replaced) and by
    PostgreSQL (the postmaster, its backends alive and ended): a parent's cutime/cstime hold its reaped children."""
    tick = os.sysconf("SC_CLK_TCK")
    procs = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        procs[int(stat.parent.name)] = (comm, int(fields[1]), *(int(x) for x in fields[11:15]))
    totals = {"gunicorn": 0, "postgresql": 0}
    for pid, (comm, ppid, utime, stime, cutime, cstime) in procs.items():
        if pid == gunicorn_pid:
            totals["gunicorn"] += utime + stime + cutime + cstime
        elif ppid == gunicorn_pid:
            totals["gunicorn"] += utime + stime
        elif comm.startswith("postgres"):
            parent = procs.get(ppid, ("",))[0]
            totals["postgresql"] += utime + stime + (0 if parent.startswith("postgres") else cutime + cstime)
    return {name: ticks / tick for name, ticks in totals.items()}


def mix(args, meta: dict) -> dict:
    """How many users of each kind, at what rate each, for --rate requests a second in all: managers make
    --manager-share of it (a matching run each every --matching-every seconds among their lists), two auditors a
    report, a drill-down or a ledger page every 5 s each, caregivers the rest."""
    users = {"caregiver": min(len(meta["caregivers"]), args.caregiver_users), "manager": len(meta["managers"]),
             "auditor": 2}
    rates = {"manager": args.manager_share * args.rate / users["manager"], "auditor": 0.2}
    rates["caregiver"] = (args.rate - rates["manager"] * users["manager"] - rates["auditor"] * users["auditor"]) \
        / users["caregiver"]
    return {"users": users, "rates": rates, "matching_every_s": args.matching_every, "refreshes": args.refreshes}


def run(args, meta: dict) -> dict:
    """One load run on a fresh copy of the base: serve, drive, read locust's statistics."""
    import tempfile

    copy_database(args, BASE_DB, RUN_DB)
    run_dir = Path(tempfile.mkdtemp(prefix="servicehub-load-"))
    plan = {**mix(args, meta), "today": meta["today"], "caregivers": meta["caregivers"],
            "managers": meta["managers"], "auditor": meta["auditor"], "month": meta["month"],
            "organisations": meta["organisations"], "service_types": ["LC01", "LC02", "PS01", "PS03", "RH01"]}
    (run_dir / "plan.json").write_text(json.dumps(plan, ensure_ascii=False))
    server = serve(args, run_dir)
    host = server.host
    result = {"rate_asked": args.rate, "duration_s": args.duration, "web_workers": args.web_workers,
              "users": plan["users"], "load_before": kpis.load()}
    try:
        busy0, total0 = cpu_times()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        processes0 = process_cpu(server.process.pid)
        users = sum(plan["users"].values())
        locust = subprocess.run(
            [str(BIN / "locust"), "-f", str(ROOT / "bench" / "locustfile.py"), "--headless", "--users", str(users),
             "--spawn-rate", str(max(10, users // 4)), "--run-time", f"{args.duration}s", "--host", host,
             "--csv", str(run_dir / "locust"), "--reset-stats", "--only-summary", "--stop-timeout", "10",
             "--loglevel", "WARNING"],
            cwd=run_dir, env={**os.environ, "LOAD_PLAN": str(run_dir / "plan.json")}, capture_output=True, text=True)
        busy1, total1 = cpu_times()
        processes1 = process_cpu(server.process.pid)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        result["cpu_busy_pct"] = round(100 * (busy1 - busy0) / max(1, total1 - total0), 1)
        result["cpu_s"] = {name: round(processes1[name] - processes0[name], 1) for name in processes0}
        result["cpu_s"]["locust"] = round(children.ru_utime + children.ru_stime - before.ru_utime - before.ru_stime, 1)
        result["load_after"] = kpis.load()
        if not (run_dir / "locust_stats.csv").exists():
            sys.exit(f"locust wrote no statistics:\n{locust.stderr[-4000:]}")
    finally:
        server.stop()
    result["endpoints"] = read_stats(run_dir / "locust_stats.csv")
    # locust resets its statistics once every user has started; the log's first lines are the ramp-up
    result["server"] = server_times(run_dir / "access.log", started_at=0.1)
    result["failures"] = read_failures(run_dir / "locust_failures.csv")
    result["counts"] = visit_counts(args, meta["today"])
    if not args.keep_run:
        kpis.pg_admin(pg_args(args, RUN_DB), f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')
    result["run_dir"] = str(run_dir)
    return result


def read_stats(path: Path) -> dict:
    """Locust's per-endpoint statistics (milliseconds), the aggregate under 'all'."""
    rows = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            name = "all" if row["Name"] == "Aggregated" else row["Name"]
            rows[name] = {"requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                          "rps": round(float(row["Requests/s"]), 1), "median_ms": int(float(row["50%"])),
                          "p95_ms": int(float(row["95%"])), "p99_ms": int(float(row["99%"])),
                          "max_ms": round(float(row["Max Response Time"]))}
    return rows


SERVER_NAMES = (("GET", "/api/v1/rosters", "roster"), ("POST", "/check-in", "check-in"),
                ("POST", "/check-out", "check-out"))


def server_times(access_log: Path, started_at: float) -> dict:
    """Percentiles of the time the app took (gunicorn's %(D)s, from the log lines of the measured period) for the
    requests with targets: what the server did, apart from the load generator's own scheduling."""
    import statistics

    times: dict[str, list[float]] = {name: [] for _, _, name in SERVER_NAMES}
    lines = access_log.read_text().splitlines()
    for line in lines[int(len(lines) * started_at):]:
        parts = line.split()
        if len(parts) != 4:
            continue
        method, path, _, micros = parts
        for want_method, fragment, name in SERVER_NAMES:
            if method == want_method and fragment in path:
                times[name].append(int(micros) / 1000)
    result = {}
    for name, values in times.items():
        if len(values) >= 20:
            cuts = statistics.quantiles(values, n=100)
            result[name] = {"requests": len(values), "median_ms": round(cuts[49], 1), "p95_ms": round(cuts[94], 1),
                            "p99_ms": round(cuts[98], 1)}
    return result


def read_failures(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as f:
        return [{"name": r["Name"], "error": r["Error"][:300], "count": int(r["Occurrences"])} for r in csv.DictReader(f)]


def visit_counts(args, today: str) -> dict:
    """Today's visits by status after the run (what the check-ins and check-outs did)."""
    if kpis.pg_exists(pg_args(args, RUN_DB)):
        engine = sa.create_engine(pg_url(args, RUN_DB))
        try:
            with engine.connect() as conn:
                return dict(conn.execute(sa.text("SELECT status, count(*) FROM visits WHERE service_date = :d "
                                                 "AND worker_id IS NOT NULL GROUP BY status"),
                                         {"d": date.fromisoformat(today)}).all())
        finally:
            engine.dispose()
    return {}


def verdict(result: dict) -> list[str]:
    """The targets missed (none: all met)."""
    missed = []
    for name, limit in TARGETS_MS.items():
        p95 = result["endpoints"].get(name, {}).get("p95_ms")
        if p95 is None or p95 >= limit:
            missed.append(f"{name} p95 {p95} ms (target < {limit} ms)")
    total = result["endpoints"].get("all", {})
    if total.get("failures", 1):
        missed.append(f"{total.get('failures')} failed requests")
    if total.get("rps", 0) < 0.95 * result["rate_asked"]:
        missed.append(f"{total.get('rps')} requests/s achieved of {result['rate_asked']}")
    return missed


def markdown(result: dict) -> str:
    """Rows of the table in bench/README.md."""
    lines = []
    for name, row in result["endpoints"].items():
        target = TARGETS_MS.get(name)
        mark = "" if target is None else (" ✓" if row["p95_ms"] < target else " ✗")
        lines.append(f"| {name} | {row['requests']:,} | {row['rps']} | {row['failures']} | {row['median_ms']} "
                     f"| **{row['p95_ms']}**{mark} | {row['p99_ms']} | {row['max_ms']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, default=Path(os.environ.get("SERVICEHUB_BENCH_DIR",
                                                                          "/tmp/bench_kpis")),
                        help="where the prepared district's files and descriptions are kept")
    parser.add_argument("--district-database", default="servicehub_bench_kpis")
    parser.add_argument("--pg-admin-url", default=os.environ.get("SERVICEHUB_BENCH_PG_URL", kpis.PG_ADMIN_URL))
    parser.add_argument("--organisations", type=int, default=20, help="organisations whose today is published")
    parser.add_argument("--time-limit", type=float, default=5.0, help="solver seconds per organisation-day")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second in all")
    parser.add_argument("--duration", type=int, default=120, help="seconds of load after every user started")
    parser.add_argument("--web-workers", type=int, default=5, help="gunicorn workers")
    parser.add_argument("--caregiver-users", type=int, default=300, help="at most this many caregivers at once")
    parser.add_argument("--manager-share", type=float, default=0.1, help="share of the rate from managers")
    parser.add_argument("--refreshes", type=int, default=3,
                        help="roster fetches by a caregiver before each check-in and each check-out")
    parser.add_argument("--matching-every", type=float, default=60.0, help="seconds between a manager's matching runs")
    parser.add_argument("--rebuild", action="store_true", help="make the base again even if today's is there")
    parser.add_argument("--keep-run", action="store_true", help="keep the run's database afterwards")
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--stage", choices=("base",), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage == "base":
        print(json.dumps(prepare_base(args), ensure_ascii=False, default=str), flush=True)
        return
    print(json.dumps({"machine": kpis.machine()}), flush=True)
    _, district_meta = district(args)
    meta = base(args, district_meta)
    print(json.dumps({"base": {k: v for k, v in meta.items() if k not in ("caregivers", "managers", "auditor")},
                      "caregivers": len(meta["caregivers"])}, ensure_ascii=False), flush=True)
    if args.prepare_only:
        return
    result = run(args, meta)
    missed = verdict(result)
    result["targets_missed"] = missed
    print(json.dumps(result, ensure_ascii=False), flush=True)
    if args.markdown:
        print(markdown(result))
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
