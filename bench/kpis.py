"""KPI reports benchmark (issue 8, item 6): district-wide reports over the 20,000-recipient scale demo with a year
of service records, on SQLite and PostgreSQL. Target: under 1 s for the JSON report, under 10 s for the PDF.

    .venv/bin/python bench/kpis.py --keep /tmp/bench_kpis --markdown                   # both engines, every case
    .venv/bin/python bench/kpis.py --engine sqlite --keep /tmp/bench_kpis --markdown
    .venv/bin/python bench/kpis.py --engine postgresql --keep /tmp/bench_kpis --pg-database servicehub_bench_kpis
    .venv/bin/python bench/kpis.py --engine sqlite --keep /tmp/bench_kpis --case json:organisation --profile /tmp/prof
    .venv/bin/python bench/kpis.py --engine sqlite --keep /tmp/bench_kpis --prepare-only
    # defaults: --recipients 20000 --workers 1500 --organisations 60 --years 1 --target 300000 --repeat 5

Preparing, once per engine, in a process of its own, through the real pipeline (what the commands run):
`servicehub db upgrade`, `seed catalog`, `seed demo`, `demo generate --recipients 20000 --workers 1500
--organisations 60`, `serve_demo_district()` (`demo serve`: matching, every proposal offered and accepted,
referrals activated, visits generated over the horizon), then `write_demo_history(years=1, target=300000)`
(`demo history`: past visits and hash-chained ledger records for every active visit series). An auditor account
with an API token is added for the HTTP cases. SQLite: a file in --keep (else a temporary directory);
PostgreSQL: the database --pg-database, dropped and created again when preparing, kept when --keep is given
(else dropped at the end). With --keep, a later run reuses what is there (a JSON file per engine next to it
says what was prepared) unless --rebuild. Preparing takes long (see bench/README.md, "KPI reports").

Each case then runs in a fresh process (cold: the first call after the app is made), then --repeat more times in
the same process (warm; the session is dropped between calls as a request would). The period is the most recent
full month of the history; the year case is the whole history by month. Cases:

- `json:<grouping>`: `evaluation.services.kpi_report` as an auditor (grouped by organisation, by service type,
  by organisation and service type), the result as JSON text;
- `api:<grouping>`: GET /api/v1/reports/kpis through the Flask test client with the auditor's bearer token
  (authentication, webargs, the service, marshmallow dumping, JSON);
- `csv:organisation`, `xlsx:organisation`, `pdf:organisation`: `evaluation.exports.export_report` (the
  document: the report, the same month by organisation, by service type and by town, every record behind it);
- `json-year:month`: `kpi_report` over the whole history, grouped by month.

Each case prints one JSON line: seconds cold, each warm run, median and max; the report's person-times; peak
resident memory (cold, warm) and the process's memory before the first call; the load average before and after.
With --profile DIR one more warm call runs under cProfile, its stats go to DIR and its hottest functions into
the line. --markdown adds the table rows of bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flask_migrate
import sqlalchemy as sa
from memory import peak_rss_mb, reset_peak_rss
from support import Timer, make_app

from servicehub.auth.audit import Actor, acting_as
from servicehub.auth.permissions import Principal, Role
from servicehub.extensions import db
from servicehub.registry import demo

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
GROUPINGS = {"organisation": ("organisation",), "service_type": ("service_type",),
             "organisation+service_type": ("organisation", "service_type")}
CASES = (*(f"json:{g}" for g in GROUPINGS), *(f"api:{g}" for g in GROUPINGS),
         "csv:organisation", "xlsx:organisation", "pdf:organisation", "json-year:month")
AUDITOR = "bench-auditor"
TARGETS = {"json": 1.0, "api": 1.0, "json-year": None, "csv": None, "xlsx": None, "pdf": 10.0}


# --- the machine, the app -----------------------------------------------------------------------------


def machine() -> dict:
    """What the numbers were measured on."""
    import sqlite3

    return {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "cores": os.cpu_count(), "load_average": load(),
            "platform": platform.platform(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "cpu": _cpu(), "code": _code()}


def _code() -> str:
    """The commit the code is at, and whether servicehub/ has changes not committed."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=7", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip()
        changed = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "servicehub"], capture_output=True,
                                 text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return commit + (" (servicehub/ changed since)" if changed else "")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


# --- preparing the district ---------------------------------------------------------------------------


def last_full_month(first: date, last: date) -> tuple[date, date]:
    """The most recent calendar month wholly inside first..last."""
    following = last + timedelta(days=1)
    end = last if following.day == 1 else last.replace(day=1) - timedelta(days=1)
    start = end.replace(day=1)
    if start < first:
        raise SystemExit(f"The history {first}..{last} holds no full month.")
    return start, end


def counts_in(first: date, last: date) -> dict:
    """Visits by status and ledger records by kind dated first..last."""
    from servicehub.scheduling.models import Visit
    from servicehub.visits.models import ServiceRecord

    visits = dict(db.session.execute(sa.select(Visit.status, sa.func.count())
                                     .where(Visit.service_date.between(first, last)).group_by(Visit.status)).all())
    records = dict(db.session.execute(sa.select(ServiceRecord.kind, sa.func.count())
                                      .where(ServiceRecord.service_date.between(first, last))
                                      .group_by(ServiceRecord.kind)).all())
    return {"visits": {str(k): n for k, n in visits.items()}, "records": sum(records.values()),
            "records_by_kind": {str(k): n for k, n in records.items()}}


def prepare(args, url: str, directory: str) -> dict:
    """Build the district through the pipeline into `url`; what was written and how long each step took."""
    from servicehub.auth import services as auth
    from servicehub.catalog import services as catalog
    from servicehub.matching import services as matching
    from servicehub.registry import demo_loader
    from servicehub.registry.cli import read_demo_files
    from servicehub.scheduling import demo as scheduling_demo
    from servicehub.visits import history

    shape = demo.Shape(recipients=args.recipients, workers=args.workers, organisations=args.organisations,
                       scale=True)
    app = make_app(url, directory)
    seconds, started = {}, time.perf_counter()
    loads = {"start": load()}
    profiler = cProfile.Profile() if args.profile else None
    with app.app_context(), acting_as(Actor("cli:bench")):
        reset_peak_rss()
        flask_migrate.upgrade()
        seconds["migrate"] = round(time.perf_counter() - started, 1)
        mark = time.perf_counter()
        catalog.seed_catalog(catalog.read_catalog_file())
        demo_loader.load_demo(read_demo_files())
        seconds["seed_catalog_and_demo"] = round(time.perf_counter() - mark, 1)
        mark = time.perf_counter()
        written = demo_loader.generate_scale_district(shape, seed=args.seed)
        seconds["generate"] = round(time.perf_counter() - mark, 1)
        loads["generated"] = load()
        mark = time.perf_counter()
        if profiler:
            profiler.enable()
        with Timer((matching, "run_matching"), (matching, "offer_many"), (matching, "act_many"),
                   (matching, "activate_due_referrals"), (scheduling_demo, "generate_visits")) as serve_timer:
            accepted, generation = scheduling_demo.serve_demo_district()
        seconds["serve"] = round(time.perf_counter() - mark, 1)
        loads["served"] = load()
        db.session.remove()
        mark = time.perf_counter()
        with Timer((history, "_load_series"), (history, "_plan_outcomes"), (history, "calibrate"),
                   (history, "_load_workers"), (history, "_plan_days"), (history, "_insert_visits"),
                   (history, "_chain")) as history_timer:
            report = history.write_demo_history(years=args.years, seed=args.history_seed, target=args.target)
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(Path(args.profile) / f"prepare-{args.engine}.pstats"))
        seconds["history"] = round(time.perf_counter() - mark, 1)
        loads["history"] = load()
        db.session.remove()
        if db.engine.dialect.name == "postgresql":
            # Planner statistics after the bulk load, as autovacuum would gather them (it is off on the project's
            # PostgreSQL servers): without them every plan assumes a handful of rows.
            mark = time.perf_counter()
            db.session.execute(sa.text("ANALYZE"))
            db.session.commit()
            seconds["analyze"] = round(time.perf_counter() - mark, 1)
        auditor = auth.create_user(username=AUDITOR, role=Role.AUDITOR.value, password="bench-auditor-2026!",
                                   display_name="Bench auditor")
        token = auth.issue_token(auditor, name="bench", ttl_days=365).secret
        first, last = last_full_month(report.date_from, report.date_to)
        month_counts, year_counts = counts_in(first, last), counts_in(report.date_from, report.date_to)
        peak = round(peak_rss_mb())
        db.session.remove()
        db.engine.dispose()
    seconds["total"] = round(time.perf_counter() - started, 1)
    seconds["serve_parts"] = serve_timer.rounded()
    history_parts = history_timer.rounded()
    history_parts["write_records_and_rest"] = round(report.seconds - sum(history_timer.seconds.values()), 1)
    seconds["history_parts"] = history_parts
    return {
        "engine": args.engine, "shape": {"recipients": args.recipients, "workers": args.workers,
                                         "organisations": args.organisations, "seed": args.seed},
        "history": {"years": args.years, "target": args.target, "seed": args.history_seed,
                    "from": report.date_from.isoformat(), "to": report.date_to.isoformat(),
                    "report": {k: v for k, v in vars(report).items() if k not in ("date_from", "date_to")}},
        "written": written, "accepted": accepted, "visits_generated": generation.created,
        "month": [first.isoformat(), last.isoformat()], "month_counts": month_counts, "year_counts": year_counts,
        "token": token, "prepared_at": time.strftime("%Y-%m-%d %H:%M %Z"), "seconds": seconds, "load": loads,
        "peak_rss_mb": peak,
    }


# --- one case -------------------------------------------------------------------------------------------


def month_bounds(month: str) -> tuple[date, date]:
    """'2026-08' -> its first and last day."""
    first = date.fromisoformat(f"{month}-01")
    return first, (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def case_call(case: str, meta: dict, client=None, month: str | None = None):
    """The function a case times: it returns (what to count the report by, bytes produced)."""
    from servicehub.evaluation import exports, services

    kind, grouping = case.split(":")
    principal = Principal(user_id=None, username=AUDITOR, role=Role.AUDITOR)
    first, last = (date.fromisoformat(d) for d in meta["month"])
    if month:
        first, last = month_bounds(month)
    if kind == "json-year":
        first, last = date.fromisoformat(meta["history"]["from"]), date.fromisoformat(meta["history"]["to"])
    group_by = GROUPINGS.get(grouping, (grouping,))

    def run():
        if kind in ("json", "json-year"):
            report = services.kpi_report(principal, first, last, group_by)
            text = json.dumps(report, ensure_ascii=False)
            return report, len(text.encode())
        if kind == "api":
            response = client.get("/api/v1/reports/kpis", query_string={
                "from": first.isoformat(), "to": last.isoformat(), "group_by": ",".join(group_by)},
                headers={"Authorization": f"Bearer {meta['token']}"})
            if response.status_code != 200:
                raise SystemExit(f"{case}: HTTP {response.status_code} {response.get_data(as_text=True)[:500]}")
            return response.get_json(), len(response.get_data())
        content, _ = exports.export_report(principal, kind, first, last, group_by)
        return None, len(content)

    return run, (first, last)


def run_case(args, meta: dict, url: str, directory: str) -> dict:
    """Cold call, warm calls, optionally a profiled call: one JSON-ready dict."""
    case = args.case[0]
    result = {"engine": meta["engine"], "case": case, "load_before": load()}
    app = make_app(url, directory)
    with app.app_context():
        client = app.test_client() if case.startswith("api:") else None
        run, (first, last) = case_call(case, meta, client, args.month)
        result["period"] = [first.isoformat(), last.isoformat()]
        result["rss_before_mb"] = round(peak_rss_mb()) if reset_peak_rss() else None
        times = []
        try:
            for _ in range(1 + args.repeat):
                started = time.perf_counter()
                report, size = run()
                times.append(time.perf_counter() - started)
                db.session.remove()
                if len(times) == 1:
                    result["peak_rss_cold_mb"] = round(peak_rss_mb())
                    reset_peak_rss()
        except KeyError as exc:  # a format the exports cannot render yet
            result["unavailable"] = f"no renderer for {exc}"
            return result
        result["peak_rss_warm_mb"] = round(peak_rss_mb())
        result["cold_s"] = round(times[0], 3)
        warm = times[1:]
        result["warm_s"] = [round(t, 3) for t in warm]
        result["median_s"] = round(statistics.median(warm), 3) if warm else None
        result["max_s"] = round(max(warm), 3) if warm else None
        result["bytes"] = size
        if report is not None:
            total = report["total"]
            result["person_times"] = total["person_times"]
            result["missed"] = total["missed"]
            result["groups"] = len(report["groups"])
        result["counts"] = counts_in(first, last)
        db.session.remove()
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            run()
            profiler.disable()
            db.session.remove()
            name = case.replace(":", "-").replace("+", "-") + (f"-{args.month}" if args.month else "")
            profiler.dump_stats(str(Path(args.profile) / f"{meta['engine']}-{name}.pstats"))
            result["hot"] = hot_spots(profiler)
        db.session.remove()
        db.engine.dispose()
    result["load_after"] = load()
    return result


def hot_spots(profiler: cProfile.Profile, top: int = 12) -> dict:
    """The functions with the most own time, and those with the most time inside them (from servicehub)."""
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.stats.items():
        where = filename.split("/site-packages/")[-1].split("/work/main/")[-1]
        rows.append((f"{where}:{line}({name})", calls, round(own, 3), round(cumulative, 3)))
    by_own = sorted(rows, key=lambda r: -r[2])[:top]
    ours = sorted((r for r in rows if r[0].startswith("servicehub/")), key=lambda r: -r[3])[:top]
    return {"total_s": round(sum(r[2] for r in rows), 3), "own": by_own, "cumulative_servicehub": ours}


# --- databases ------------------------------------------------------------------------------------------


def pg_url(args) -> str:
    return sa.make_url(args.pg_admin_url).set(database=args.pg_database).render_as_string(hide_password=False)


def pg_admin(args, statement: str) -> None:
    engine = sa.create_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def pg_exists(args) -> bool:
    engine = sa.create_engine(args.pg_admin_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                {"n": args.pg_database}).first() is not None
    finally:
        engine.dispose()


def pg_version(args) -> str:
    engine = sa.create_engine(args.pg_admin_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SHOW server_version")).scalar()
    finally:
        engine.dispose()


def shape_name(args) -> str:
    return f"kpis_{args.recipients}_{args.workers}_{args.organisations}_{args.seed}_{args.years:g}y_{args.target}"


def prepared(args, engine: str, directory: Path) -> tuple[str, dict]:
    """The database prepared for the engine: reused when --keep holds one made for the same shape."""
    name = shape_name(args)
    meta_path = directory / f"{name}_{engine}.json"
    if engine == "sqlite":
        database = directory / f"{name}.db"
        url = f"sqlite:///{database}"
        there = database.exists()
    else:
        url = pg_url(args)
        there = pg_exists(args)
    if there and meta_path.exists() and not args.rebuild:
        meta = json.loads(meta_path.read_text())
        if meta.get("url") == url:
            print(json.dumps({"prepared": {**meta, "token": "…", "reused": True}}, ensure_ascii=False), flush=True)
            return url, meta
    meta_path.unlink(missing_ok=True)
    if engine == "sqlite":
        database.unlink(missing_ok=True)
    else:
        pg_admin(args, f'DROP DATABASE IF EXISTS "{args.pg_database}" WITH (FORCE)')
        pg_admin(args, f'CREATE DATABASE "{args.pg_database}"')
    meta = child(args, ["--stage", "prepare", "--engine", engine, "--url", url, "--directory", str(directory)])[0]
    meta = {**meta["prepared"], "url": url}
    if engine == "postgresql":
        meta["server_version"] = pg_version(args)
    meta_path.write_text(json.dumps(meta, ensure_ascii=False))
    return url, meta


def child(args, extra: list[str]) -> list[dict]:
    """Run one stage in a process of its own; its JSON lines (echoed as they come, the token hidden)."""
    command = [sys.executable, __file__, "--recipients", str(args.recipients), "--workers", str(args.workers),
               "--organisations", str(args.organisations), "--seed", str(args.seed), "--years", str(args.years),
               "--target", str(args.target), "--history-seed", str(args.history_seed), "--repeat", str(args.repeat),
               *(["--month", args.month] if args.month else []),
               *(["--profile", str(args.profile)] if args.profile else []), *extra]
    finished = subprocess.run(command, capture_output=True, text=True)
    lines = []
    for line in finished.stdout.splitlines():
        if line.startswith("{"):
            data = json.loads(line)
            shown = {**data, "prepared": {**data["prepared"], "token": "…"}} if "prepared" in data else data
            print(json.dumps(shown, ensure_ascii=False), flush=True)
            lines.append(data)
    if finished.returncode:
        sys.exit(f"stage {' '.join(extra)} failed:\n{finished.stderr[-6000:]}")
    return lines


def in_process(args) -> None:
    """What a child process does: prepare an engine's district, or run one case."""
    if args.stage == "prepare":
        meta = prepare(args, args.url, args.directory)
        print(json.dumps({"prepared": meta}, ensure_ascii=False, default=str), flush=True)
        return
    meta = json.loads(Path(args.meta).read_text())
    print(json.dumps(run_case(args, meta, args.url, args.directory), ensure_ascii=False), flush=True)


# --- the table ------------------------------------------------------------------------------------------


def markdown(results: list[dict]) -> str:
    """Rows of the table in bench/README.md."""
    lines = []
    for r in results:
        kind = r["case"].split(":")[0]
        what = {"json": "JSON (service)", "api": "HTTP API", "json-year": "JSON (service), a year by month",
                "csv": "CSV export", "xlsx": "XLSX export", "pdf": "PDF export"}[kind]
        grouping = r["case"].split(":")[1].replace("+", " + ").replace("_", " ")
        grouping += "" if kind == "json-year" else f" ({r['period'][0][:7]})"
        engine = "SQLite" if r["engine"] == "sqlite" else "PostgreSQL"
        if "unavailable" in r:
            lines.append(f"| {engine} | {what} | {grouping} | — | — | — | — | — | — | {r['unavailable']} |")
            continue
        counts = r["counts"]
        visits = sum(counts["visits"].get(s, 0) for s in ("completed", "missed", "cancelled"))
        target = TARGETS[kind]
        mark = "" if target is None else (" ✓" if r["max_s"] < target and r["cold_s"] < target else " ✗")
        person_times = f"{r['person_times']:,}" if "person_times" in r else f"{counts['visits'].get('completed', 0):,}"
        lines.append(
            f"| {engine} | {what} | {grouping} | {r['cold_s']:.2f} | **{r['median_s']:.2f}**{mark} | {r['max_s']:.2f} "
            f"| {person_times} / {visits:,} / {counts['records']:,} | {r['bytes'] / 1024:,.0f} KB "
            f"| {r['peak_rss_cold_mb']} / {r['peak_rss_warm_mb']} MB (from {r['rss_before_mb']}) "
            f"| {r['load_before'][0]:.2f} → {r['load_after'][0]:.2f} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options (bench/load.py prepares its district with them too)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--case", choices=CASES, nargs="+", default=list(CASES))
    parser.add_argument("--repeat", type=int, default=5, help="warm calls after the cold one, in the same process")
    parser.add_argument("--month", help="YYYY-MM: report this month instead of the history's most recent full one")
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1_500)
    parser.add_argument("--organisations", type=int, default=60)
    parser.add_argument("--seed", type=int, default=demo.DEMO_SEED)
    parser.add_argument("--years", type=float, default=1.0, help="history to write (write_demo_history)")
    parser.add_argument("--target", type=int, default=300_000, help="completed person-times the history aims at")
    parser.add_argument("--history-seed", type=int, default=20241201)
    parser.add_argument("--keep", type=Path, help="keep the prepared SQLite file, the PostgreSQL database and "
                        "what was prepared in this folder; reuse them on the next run")
    parser.add_argument("--rebuild", action="store_true", help="prepare again even when --keep holds a district")
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--pg-admin-url", default=os.environ.get("SERVICEHUB_BENCH_PG_URL", PG_ADMIN_URL))
    parser.add_argument("--pg-database", default="servicehub_bench_kpis")
    parser.add_argument("--profile", type=Path, help="write cProfile stats here (one more warm call per case; "
                        "preparation under the profiler too when it runs)")
    parser.add_argument("--markdown", action="store_true", help="also print the table rows of bench/README.md")
    parser.add_argument("--stage", choices=("prepare", "case"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--directory", help=argparse.SUPPRESS)
    parser.add_argument("--meta", help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    if args.stage:
        args.engine = args.engine[0]
        in_process(args)
        return
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    print(json.dumps({"machine": machine()}), flush=True)
    results, metas = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        keep = args.keep or Path(scratch)
        keep.mkdir(parents=True, exist_ok=True)
        for engine in args.engine:
            try:
                url, meta = prepared(args, engine, keep)
                metas[engine] = meta
                if args.prepare_only:
                    continue
                meta_file = Path(scratch) / f"{engine}.json"
                meta_file.write_text(json.dumps(meta, ensure_ascii=False))
                for case in args.case:
                    results += child(args, ["--stage", "case", "--engine", engine, "--case", case, "--url", url,
                                            "--directory", str(keep), "--meta", str(meta_file)])
            finally:
                if engine == "postgresql" and not args.keep and pg_exists(args):
                    pg_admin(args, f'DROP DATABASE IF EXISTS "{args.pg_database}" WITH (FORCE)')
    if args.markdown and results:
        print(markdown(results))
    print(json.dumps({"load_average_at_end": load()}), flush=True)


if __name__ == "__main__":
    main()
