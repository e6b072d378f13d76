"""Scheduling benchmark: a realistic day (issue 6, item 7). One organisation's day of about 300 visits and
25 workers, and a district day of about 2,000 visits, 150 workers and 12 organisations, from the scale
demo generator and the real pipeline: solve time, visits placed, travel minutes per visit, peak memory.

    .venv/bin/python bench/roster_day.py --keep /tmp/roster_day --markdown          # both cases
    .venv/bin/python bench/roster_day.py --case one --time-limit 5 10 --processes 1 2 --keep /tmp/roster_day --markdown
    .venv/bin/python bench/roster_day.py --case district --time-limit 5 10 --processes 1 2 --keep /tmp/roster_day --markdown
    .venv/bin/python bench/roster_day.py --case one --one-shape 3850 800 12 --organisation 9 --keep /tmp/roster_day --markdown
    # the design's ratio (a meal service of about 300 visits and 25 workers), and the same needs fully staffed:
    .venv/bin/python bench/roster_day.py --case one --one-shape 875 88 12 --staffing workload --time-limit 5 8 10 \
        --processes 1 --keep /tmp/roster_day --markdown
    .venv/bin/python bench/roster_day.py --case one --one-shape 875 140 12 --staffing workload --time-limit 5 8 10 \
        --processes 1 --keep /tmp/roster_day --markdown
    .venv/bin/python bench/roster_day.py --case district --district-shape 3200 150 12 --staffing workload \
        --time-limit 5 --processes 1 2 --keep /tmp/roster_day --markdown
    # defaults: --one-shape 3850 165 12 (recipients, workers, organisations) --district-shape 3200 160 12
    # --staffing profile --seed 20240601 --weekday wed; --time-limit 5 10 (one), 10 (district, per organisation);
    # --processes 1 2

Preparing a district takes 1-4 minutes a shape (most of it offering the proposals; accepting them is one
transaction per organisation); with --keep a later invocation the same day reuses it.

Each district is prepared once per shape, in a process of its own, by
`servicehub.scheduling.bench_day.prepare_district` (what `servicehub bench day` prepares with; nearly all of
the time is `serve_demo_district`): a throw-away SQLite database is migrated, gets the catalogue and the demo district's reference parts, the
scale district written by the code of `servicehub demo generate` (`--staffing workload`: the workers shared among the
organisations by the workload of the needs routed to them, `demo.workload_weights`), and then
`servicehub.scheduling.demo.serve_demo_district()` (what `servicehub demo serve` runs): matching for every
open need, every proposal offered and accepted as its organisation, referrals activated, visits generated
over the 14-day horizon from the district's today. The day is the first
`--weekday` after today (so that the run service, which refuses past days, can plan it). The "one"
organisation is the one whose day is nearest 300 visits and 25 workers on shift.

Each case then runs in a process of its own (so that its peak memory is its own), on a copy of that
database (a throw-away database per case):

- `--case one` (each --time-limit x --processes): `services.load_day` builds the day's solver Problem,
  `solver.solve` with `SolveOptions(time_limit_s=search_seconds(limit), processes=P)` (the service's own
  per-day limit rule) plans it, `validate.plan_violations` checks the plan (`bench_day.measure_day`, as
  `servicehub bench day` measures a day). After that, the first solution alone (`solution_limit=1`) shows
  what the insertion heuristic places. Then the full run path:
  `services.start_run` with SERVICEHUB_RUN_INLINE (generates the day's visits again, loads, solves, stores
  the plan), its phases timed by wrapping the service's helpers from outside.
- `--case district` (each --time-limit, --processes 1 and/or 2): every organisation's day is loaded and
  solved (they are independent problems; the service plans one organisation per run). `--processes 1`:
  one after the other in one process; `--processes 2`: the organisations over two worker processes (the
  longest first), one search each. The time limit is per organisation, cut by the service's rule.

"Feasible" visits are those for which `solver.why_unplaceable` finds no reason (someone qualified could
reach them inside the window and the shift, around the breaks). "Bound" is an upper bound on what any
plan can place: the least of the feasible visits, the workers' most visits a day summed, the most feasible
visits whose durations fit the workers' working minutes (shortest first, travel not counted), and the
feasible non-meal visits plus the meals the boxes hold (one box load a day per worker). Travel per visit is all travel of the routes (the way home
included) over the visits placed.

One JSON line per step (machine, preparation, each case); `--markdown` adds the table rows of
bench/README.md. The generator's contracts are for 2026: the benchmark needs a district today in 2026.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memory import peak_rss_mb, reset_peak_rss
from support import Timer, make_app

from servicehub.auth.audit import Actor, acting_as
from servicehub.auth.permissions import COMMAND_LINE
from servicehub.extensions import db
from servicehub.registry import demo
from servicehub.scheduling import bench_day, services

TARGET_ONE = (300, 25)  # visits, workers on shift
TARGET_SECONDS = {"one": 10, "district": 60}


# --- memory and the machine ----------------------------------------------------------------------


def children_peak_mb() -> int:
    """The largest peak resident memory of this process's finished children (the solver's processes), in MB."""
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def machine() -> dict:
    """What the numbers were measured on, and how busy the machine was when the run started."""
    import sqlite3

    import ortools

    return {"date": time.strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count(), "load_average": os.getloadavg(),
            "platform": platform.platform(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "ortools": ortools.__version__}


# --- preparing the district ----------------------------------------------------------------------


def pick_one(counts: list[dict]) -> dict:
    """The organisation whose day is nearest TARGET_ONE (relative distance in visits and in workers)."""
    visits, workers = TARGET_ONE
    return min((c for c in counts if c["visits"]),
               key=lambda c: abs(c["visits"] - visits) / visits + abs(c["workers"] - workers) / workers)


def district_of(args, shape: list[int]) -> bench_day.District:
    """The district of a shape (recipients, workers, organisations) with the run's staffing, seed and weekday."""
    return bench_day.District(*shape, staffing=args.staffing, seed=args.seed, weekday=args.weekday)


def prepare(args, path: Path) -> dict:
    """Build the district into the SQLite file `path` and serve it, timing the parts of serving; its numbers."""
    from servicehub.matching import services as matching
    from servicehub.scheduling import demo as scheduling_demo

    timer = Timer((matching, "run_matching"), (matching, "offer_many"), (matching, "act_many"),
                  (matching, "activate_due_referrals"), (scheduling_demo, "generate_visits"))
    meta = bench_day.prepare_district(path, district_of(args, args.shape), around_serve=timer)
    meta["seconds"]["serve_parts"] = timer.rounded()
    meta["one"] = pick_one(meta["by_organisation"])
    return meta


# --- one organisation's day ------------------------------------------------------------------------


def full_run(organisation_id: int, day: date, limit: float) -> dict:
    """The service's run path, inline: start_run -> execute_run (generate, load, solve, store)."""
    db.session.remove()
    timer = Timer((services, "generate_visits"), (services, "load_day"), (services, "solve"), (services, "_basis"))
    with timer, acting_as(Actor("cli:bench")):
        started = time.perf_counter()
        run = services.start_run(COMMAND_LINE, organisation_id, day, day, time_limit_s=limit)
        wall = time.perf_counter() - started
    parts = timer.rounded()
    parts["store_and_rest"] = round(wall - sum(timer.seconds.values()), 1)
    return {"wall_s": round(wall, 2), "run_seconds": run.seconds, "status": run.status, "error": run.error[:300],
            "visits": run.visits_total, "placed": run.placed, "unplaced": run.unplaced, "travel": run.travel_min,
            "parts": parts}


def case_one(args, meta: dict, url: str, directory: str) -> None:
    """One organisation's day at each (limit, processes) asked for this process: one JSON line each."""
    day, organisation_id = date.fromisoformat(meta["day"]), args.organisation or pick_one(meta["by_organisation"])["organisation_id"]
    name = next(c["name"] for c in meta["by_organisation"] if c["organisation_id"] == organisation_id)
    limit, processes = args.time_limit[0], args.processes[0]
    load = os.getloadavg()[0]  # how busy the machine was as the case started (1 minute)
    app = make_app(url, directory, SERVICEHUB_RUN_INLINE=True, SERVICEHUB_SOLVER_PROCESSES=processes)
    with app.app_context():
        rss_before = peak_rss_mb() if reset_peak_rss() else None
        result = bench_day.measure_day(organisation_id, day, limit, processes, first=True)
        result["peak_rss_mb"] = round(peak_rss_mb())
        result["rss_before_mb"] = None if rss_before is None else round(rss_before)
        reset_peak_rss()
        run = full_run(organisation_id, day, limit)
        run["peak_rss_mb"] = round(peak_rss_mb())
        result["run"] = run
        result["solver_processes_peak_mb"] = children_peak_mb() if processes > 1 else None
        db.session.remove()
        db.engine.dispose()
    print(json.dumps({"case": "one", "day": meta["day"], "name": name, "time_limit": limit,
                      "processes": processes, "load_average": round(load, 2), **result}, ensure_ascii=False), flush=True)


# --- the district day --------------------------------------------------------------------------------

_worker_app = None


def _worker_start(url: str, directory: str) -> None:
    """A district worker process: the app on the case's database, kept for its tasks."""
    global _worker_app
    _worker_app = make_app(url, directory)
    _worker_app.app_context().push()


def _worker_solve(organisation_id: int, day: str, limit: float) -> dict:
    result = bench_day.measure_day(organisation_id, date.fromisoformat(day), limit)
    db.session.remove()
    return {**result, "pid": os.getpid(), "process_peak_mb": round(peak_rss_mb())}


def case_district(args, meta: dict, url: str, directory: str) -> None:
    """Every organisation's day, one after the other or over two processes: one JSON line."""
    day = meta["day"]
    limit, processes = args.time_limit[0], args.processes[0]
    organisations = [c for c in meta["by_organisation"] if c["visits"] and c["workers"]]
    # Longest first (limit by the service's rule, roughly by visits), so that two processes end together.
    organisations.sort(key=lambda c: -c["visits"])
    load = os.getloadavg()[0]
    reset_peak_rss()
    started = time.perf_counter()
    if processes == 1:
        app = make_app(url, directory)
        with app.app_context():
            results = [_worker_solve(c["organisation_id"], day, limit) for c in organisations]
            db.session.remove()
            db.engine.dispose()
    else:
        with ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_worker_start, initargs=(url, directory)) as pool:
            results = list(pool.map(_worker_solve, [c["organisation_id"] for c in organisations],
                                    [day] * len(organisations), [limit] * len(organisations)))
    wall = time.perf_counter() - started
    peaks = {}
    for r in results:
        peaks[r["pid"]] = max(peaks.get(r["pid"], 0), r["process_peak_mb"])
    placed = sum(r["plan"]["placed"] for r in results)
    travel = sum(r["plan"]["travel"] for r in results)
    totals = {
        "visits": sum(r["visits"] for r in results), "workers": sum(r["workers"] for r in results),
        "feasible": sum(r["feasible"] for r in results), "bound": sum(r["bound"] for r in results),
        "placed": placed, "travel": travel, "travel_per_visit": round(travel / placed, 1) if placed else None,
        "violations": sum(r["plan"]["violations"] for r in results),
        "load_s": round(sum(r["load_s"] for r in results), 1),
        "solve_s": round(sum(r["plan"]["seconds"] for r in results), 1),
        "limits_s": round(sum(r["limit_s"] for r in results), 1),
        "unplaced": dict(sum((Counter(r["plan"]["unplaced"]) for r in results), Counter())),
        "infeasible": dict(sum((Counter(r["infeasible"]) for r in results), Counter())),
        # Days the search gave back with nothing placed although something could be (no first solution in time).
        "empty_plans": [{"organisation_id": r["organisation_id"], "visits": r["visits"], "limit_s": r["limit_s"]}
                        for r in results if r["plan"]["placed"] == 0 and r["bound"] > 0],
    }
    for r in results:
        r.pop("pid")
    print(json.dumps({
        "case": "district", "day": day, "time_limit": limit, "processes": processes, "load_average": round(load, 2),
        "organisations": len(results), "wall_s": round(wall, 1), **totals,
        "peak_rss_mb": round(peak_rss_mb()) if processes == 1 else None,
        "worker_peaks_mb": sorted(peaks.values()) if processes > 1 else None,
        "by_organisation": results,
    }, ensure_ascii=False), flush=True)


# --- the parent: preparation once, a process per case ------------------------------------------------


def in_process(args) -> None:
    """What a child process does: prepare the district, or run one case on a copy of it."""
    if args.stage == "prepare":
        meta = prepare(args, args.database)
        print(json.dumps({"prepared": meta}, ensure_ascii=False), flush=True)
        return
    meta = json.loads(args.meta.read_text())
    with tempfile.TemporaryDirectory() as directory:
        copy = Path(directory) / "case.db"
        shutil.copyfile(args.database, copy)  # a throw-away database of the case's own
        key = args.database.parent / "data_key"  # the instance's data key the district was encrypted with
        if key.exists():
            shutil.copyfile(key, Path(directory) / "data_key")
        url = f"sqlite:///{copy}"
        if args.stage == "one":
            case_one(args, meta, url, directory)
        else:
            case_district(args, meta, url, directory)


def child(args, stage: str, extra: list[str]) -> list[dict]:
    """Run one stage in a process of its own; its JSON lines (printed as they come)."""
    command = [sys.executable, __file__, "--stage", stage, "--seed", str(args.seed), "--weekday", args.weekday,
               "--staffing", args.staffing,
               *(["--organisation", str(args.organisation)] if args.organisation else []), *extra]
    finished = subprocess.run(command, capture_output=True, text=True)
    lines = []
    for line in finished.stdout.splitlines():
        if line.startswith("{"):
            print(line, flush=True)
            lines.append(json.loads(line))
    if finished.returncode:
        sys.exit(f"stage {stage} {' '.join(extra)} failed:\n{finished.stderr[-4000:]}")
    return lines


def prepared(args, shape: list[int], directory: Path) -> tuple[Path, dict]:
    """The database prepared for a shape (in a process of its own): reused from `directory` if it was built for
    it on the same day."""
    def in_child(database: Path, district: bench_day.District) -> dict:
        return child(args, "prepare", ["--database", str(database), "--shape", *map(str, shape)])[0]["prepared"]

    database, meta, reused = bench_day.prepared_district(directory, district_of(args, shape), in_child)
    if reused:
        print(json.dumps({"prepared": {**meta, "reused": str(database)}}, ensure_ascii=False), flush=True)
    return database, meta


def markdown(results: list[dict]) -> str:
    """Rows of the tables in bench/README.md."""
    lines = []
    for r in (r for r in results if r["case"] == "one"):
        plan, first, run = r["plan"], r["first_solution"], r["run"]
        lines.append(
            f"| one | {r['name']} | {r['visits']} / {r['workers']} | {r['time_limit']:g} s ({r['limit_s']:g}) "
            f"| {r['processes']} | {r['load_s']:.1f} | **{plan['seconds']:.1f} s** "
            f"| {plan['placed']} / {r['feasible']} / {r['visits']} (bound {r['bound']}) "
            f"| {first['placed']} in {first['seconds']:.1f} s | {plan['travel_per_visit']} "
            f"| {plan['violations']} | {run['wall_s']:.1f} s, {run['placed']} placed "
            f"| {r['peak_rss_mb']} MB{_children(r)} | {r['load_average']:.1f} |")
    for r in (r for r in results if r["case"] == "district"):
        memory = (f"{r['peak_rss_mb']} MB" if r["peak_rss_mb"] is not None
                  else " + ".join(f"{m}" for m in r["worker_peaks_mb"]) + " MB")
        how = "one after the other" if r["processes"] == 1 else f"over {r['processes']} processes"
        lines.append(
            f"| district | {r['organisations']} organisations, {how} | {r['visits']:,} / {r['workers']} "
            f"| {r['time_limit']:g} s each ({r['limits_s']:.0f} in all) | {r['processes']} | {r['load_s']:.1f} "
            f"| **{r['wall_s']:.1f} s** | {r['placed']:,} / {r['feasible']:,} / {r['visits']:,} (bound {r['bound']:,}) "
            f"| — | {r['travel_per_visit']} | {r['violations']} | — | {memory} | {r['load_average']:.1f} |")
    return "\n".join(lines)


def _children(r: dict) -> str:
    return f" (+ {r['solver_processes_peak_mb']} MB each search process)" if r.get("solver_processes_peak_mb") else ""


def main() -> None:
    """Parse the options, prepare the district once, run each case in a process of its own."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=("one", "district"), nargs="+", default=["one", "district"])
    parser.add_argument("--time-limit", type=float, nargs="+", default=None,
                        help="seconds per organisation-day (cut by the service's rule for small days); "
                             "default 5 10 for one, 10 for district")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2],
                        help="one: the solver's parallel searches; district: processes the organisations go over")
    parser.add_argument("--seed", type=int, default=demo.DEMO_SEED)
    parser.add_argument("--one-shape", type=int, nargs=3, default=[3850, 165, 12],
                        metavar=("RECIPIENTS", "WORKERS", "ORGANISATIONS"), help="the district case one is taken from")
    parser.add_argument("--district-shape", type=int, nargs=3, default=[3200, 160, 12],
                        metavar=("RECIPIENTS", "WORKERS", "ORGANISATIONS"), help="the district of the district day")
    parser.add_argument("--staffing", choices=demo.STAFFING, default="profile",
                        help="share the shapes' workers among the organisations by the profiles' head counts "
                             "(as the demo) or by the workload of the needs routed to them")
    parser.add_argument("--organisation", type=int, help="case one: this organisation (id) instead of the one "
                        "nearest 300 visits and 25 workers")
    parser.add_argument("--weekday", choices=bench_day.WEEKDAYS, default="wed", help="plan the first such day after today")
    parser.add_argument("--keep", type=Path, help="keep the prepared databases in this folder (reused the same day)")
    parser.add_argument("--markdown", action="store_true", help="also print the results as table rows")
    parser.add_argument("--stage", choices=("prepare", "one", "district"), help=argparse.SUPPRESS)
    parser.add_argument("--database", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--shape", type=int, nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--meta", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        in_process(args)
        return
    print(json.dumps({"machine": machine()}), flush=True)
    with tempfile.TemporaryDirectory() as directory:
        keep = args.keep or Path(directory)
        keep.mkdir(parents=True, exist_ok=True)
        results = []
        for case in args.case:
            database, meta = prepared(args, args.one_shape if case == "one" else args.district_shape, keep)
            meta_file = Path(directory) / f"{case}.json"
            meta_file.write_text(json.dumps(meta, ensure_ascii=False))
            limits = args.time_limit or ([5.0, 10.0] if case == "one" else [10.0])
            for limit in limits:
                for processes in args.processes:
                    results += child(args, case, ["--database", str(database), "--meta", str(meta_file),
                                                  "--time-limit", str(limit), "--processes", str(processes)])
    if args.markdown:
        print(markdown(results))
    print(json.dumps({"load_average_at_end": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
