"""Benchmark: the district-wide matching run (servicehub.matching.services.run_matching) at scale.

    .venv/bin/python bench/matching.py --capacity-factor 1 0.3 0.1 --repeat 2 --markdown    # SQLite
    .venv/bin/python bench/matching.py --capacity-factor 1 0.1 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres                 # PostgreSQL
    .venv/bin/python bench/matching.py --recipients 2000 --workers 150 --organisations 6 --time-limit 10

Each capacity factor is a case, run in a process of its own (so that its peak memory is its own). It
builds a throw-away database (a SQLite file in a temporary directory, or a database of its own created
and dropped on the PostgreSQL server named by --database-url), migrates it, loads the catalogue and the
demo district's reference parts, writes the scale district with the same code as `servicehub demo
generate` (default 20,000 recipients, 1,500 workers, 60 organisations), multiplies every contract line's
contracted quantity by the factor (so that capacity is scarce and a first-come choice starves later
needs), then runs the real district-wide matching as the command line does (COMMAND_LINE, inside an
audit `acting_as`).

It prints one JSON line per run: the wall time of the run and of its phases (loading the problem, rule
checks and scoring, the assignment, the greedy baseline, storing), needs considered, proposed,
unmatched, urgent needs placed, what the first-come baseline (`assignment.greedy`, on the same
candidates) places, the total score of both, the solver status and how its components were solved, the
peak memory of the run and the rows it wrote. The phases are timed by wrapping the service's helpers
from outside; the service itself is run unchanged. `--repeat 2` runs matching again on the same data:
the second run supersedes (withdraws) the first run's proposals, as a manager's daily re-run would.
`--markdown` also prints the results as rows of the table in bench/README.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flask_migrate
import sqlalchemy as sa
from memory import peak_rss_mb, reset_peak_rss

from servicehub import create_app
from servicehub.auth.audit import Actor, acting_as
from servicehub.auth.models import AuditLog
from servicehub.auth.permissions import COMMAND_LINE
from servicehub.extensions import db
from servicehub.matching import assignment, services
from servicehub.matching.models import MatchingOutcome, Referral
from servicehub.registry import demo, demo_loader
from servicehub.registry.models import ContractLine, Need

# The service's helpers, by phase (wrapped to time them; each is called once per run).
PHASES = {
    "load": ("_needs_in_scope", "_need_cases", "_line_options", "_organisation_profiles"),
    "evaluate": ("evaluate",),
}


# --- the database -------------------------------------------------------------------------------


@contextmanager
def throwaway_database(server_url: str | None, directory: Path) -> Iterator[str]:
    """A new empty database: a SQLite file under `directory`, or one created (and dropped) on the server."""
    if not server_url:
        yield f"sqlite:///{directory / 'bench.db'}"
        return
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"servicehub_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def prepare(shape: demo.Shape, factor: float) -> dict:
    """Migrate, load the catalogue and the demo's reference parts, generate the district, scale capacity."""
    from tests.support import load_demo_district

    started = time.perf_counter()
    flask_migrate.upgrade()
    load_demo_district()  # the catalogue, and the demo district's areas, organisations and stations
    with acting_as(Actor("cli:bench")):
        counts = demo_loader.generate_scale_district(shape)
    if factor != 1:
        lines = db.session.execute(sa.select(ContractLine.id, ContractLine.contracted_quantity)).all()
        db.session.execute(sa.update(ContractLine), [
            {"id": line_id, "contracted_quantity": max(1, round(quantity * factor))} for line_id, quantity in lines])
        db.session.commit()
    return {**counts, "open_needs": count(Need, Need.status == "open"),
            "lines": count(ContractLine), "prepared_s": round(time.perf_counter() - started, 1)}


def count(model, *where) -> int:
    """Rows of a model (matching `where`)."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


# --- instrumenting the run from outside ----------------------------------------------------------


class Probe:
    """Wraps the service's helpers for one run: time per phase, and what the solver and greedy returned."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {"load": 0.0, "evaluate": 0.0, "solve": 0.0, "greedy": 0.0}
        self.last_end = 0.0  # when the solver or the greedy baseline last returned
        self.solved = self.greedy = None
        self.candidates: list[assignment.Candidate] = []
        self._undo: list[tuple[object, str, object]] = []
        self._depth = 0

    def _wrap(self, owner, name: str, phase: str, keep: str | None = None) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            if self._depth:  # called by another wrapped helper (assign uses greedy): its time is counted there
                return original(*args, **kwargs)
            self._depth += 1
            started = time.perf_counter()
            try:
                result = original(*args, **kwargs)
            finally:
                self._depth -= 1
            ended = time.perf_counter()
            self.seconds[phase] += ended - started
            if keep:
                setattr(self, keep, result)
                self.candidates = args[0]
                self.last_end = max(self.last_end, ended)
            return result

        self._undo.append((owner, name, original))
        setattr(owner, name, timed)

    def __enter__(self) -> Probe:
        for phase, names in PHASES.items():
            for name in names:
                self._wrap(services, name, phase)
        self._wrap(assignment, "assign", "solve", keep="solved")
        self._wrap(assignment, "greedy", "greedy", keep="greedy")
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)

    def quality(self, result: assignment.AssignmentResult | None) -> dict:
        """Needs placed, urgent needs placed and the total score of a result, on the run's candidates."""
        if result is None:
            return {}
        by_pair = {(c.need_id, c.line_id): c for c in self.candidates}
        chosen = [by_pair[pair] for pair in result.chosen.items()]
        return {"placed": len(chosen), "urgent_placed": sum(c.urgent for c in chosen),
                "score_sum": round(sum(c.score for c in chosen), 1), "seconds": result.seconds,
                **({"components": result.methods} if getattr(result, "methods", None) else {})}


def run_once(time_limit: float | None) -> dict:
    """One district-wide run, instrumented: its numbers as plain data."""
    tables = {"referrals": Referral, "outcomes": MatchingOutcome, "audit_log": AuditLog}
    before = {name: count(model) for name, model in tables.items()}
    db.session.remove()
    rss_before = peak_rss_mb() if reset_peak_rss() else None
    with Probe() as probe, acting_as(Actor("cli:bench")):
        started = time.perf_counter()
        run = services.run_matching(COMMAND_LINE, time_limit_s=time_limit)
        ended = time.perf_counter()
    peak = peak_rss_mb()
    seconds = {phase: round(s, 2) for phase, s in probe.seconds.items()}
    seconds["store"] = round(ended - probe.last_end, 2) if probe.last_end else None
    seconds["total"] = round(ended - started, 2)
    solved, first_come = probe.quality(probe.solved), probe.quality(probe.greedy)
    after = {name: count(model) for name, model in tables.items()}
    result = {
        "run_id": run.id, "seconds": seconds, "needs_considered": run.needs_considered, "proposed": run.proposed,
        "unmatched": run.unmatched, "candidates": len(probe.candidates),
        "urgent": sum(1 for n in {c.need_id for c in probe.candidates if c.urgent}),
        "solver": {**solved, "status": run.solver_status}, "greedy": {**first_come, "stored": run.greedy_placed},
        "peak_rss_mb": round(peak), "rss_before_mb": None if rss_before is None else round(rss_before),
        "rows_written": {name: after[name] - before[name] for name in tables},
    }
    result["proposed_share"] = round(run.proposed / max(1, run.needs_considered), 4)
    result["greedy_share"] = round(run.greedy_placed / max(1, run.needs_considered), 4)
    return result


def bench_case(args, factor: float) -> None:
    """A fresh database at one capacity factor, and `--repeat` runs on it: one JSON line per run."""
    shape = demo.Shape(recipients=args.recipients, workers=args.workers, organisations=args.organisations,
                       scale=True)
    engine = "postgresql" if args.database_url else "sqlite"
    with tempfile.TemporaryDirectory() as directory, throwaway_database(args.database_url, Path(directory)) as url:
        app = create_app({"TESTING": True, "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url,
                          "INSTANCE_PATH": directory})
        with app.app_context():
            try:
                data = prepare(shape, factor)
                for repeat in range(1, args.repeat + 1):
                    result = {"engine": engine, "recipients": args.recipients, "workers": args.workers,
                              "organisations": args.organisations, "capacity_factor": factor, "repeat": repeat,
                              "district": data, **run_once(args.time_limit)}
                    print(json.dumps(result, ensure_ascii=False), flush=True)
            finally:
                db.session.remove()
                db.engine.dispose()


def machine(database_url: str | None) -> dict:
    """What the numbers were measured on."""
    import sqlite3

    info = {"date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    if database_url:
        engine = sa.create_engine(database_url)
        with engine.connect() as conn:
            info["postgresql"] = conn.execute(sa.text("SHOW server_version")).scalar()
        engine.dispose()
    return info


def markdown(results: list[dict]) -> str:
    """The results as rows of the table in bench/README.md."""
    lines = []
    for r in results:
        s, solver, first_come = r["seconds"], r["solver"], r["greedy"]
        lines.append(
            f"| {r['engine']} | {r['capacity_factor']:g}{' (re-run)' if r['repeat'] > 1 else ''} "
            f"| {r['needs_considered']:,} | {r['candidates']:,} | **{s['total']:.1f} s** | {s['load']:.1f} "
            f"| {s['evaluate']:.1f} | {s['solve']:.1f} | {s['store']:.1f} | {r['proposed']:,} ({r['proposed_share']:.1%}) "
            f"| {first_come['placed']:,} ({r['greedy_share']:.1%}) | {solver['urgent_placed']:,} / {first_come['urgent_placed']:,} "
            f"| {solver['score_sum']:,.0f} / {first_come['score_sum']:,.0f} | {solver['status']} "
            f"| {r['peak_rss_mb']:,} MB |")
    return "\n".join(lines)


def main() -> None:
    """Parse the options and run the benchmark: each capacity factor in a process of its own."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1_500)
    parser.add_argument("--organisations", type=int, default=60)
    parser.add_argument("--database-url", help="a PostgreSQL server to create a throw-away database on "
                        "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres); default: a SQLite file")
    parser.add_argument("--capacity-factor", type=float, nargs="+", default=[1.0],
                        help="multiply every line's contracted quantity by F (one case per value)")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="the solver's time limit in seconds (default: SERVICEHUB_MATCHING_TIME_LIMIT)")
    parser.add_argument("--repeat", type=int, default=1, help="matching runs per case, on the same data")
    parser.add_argument("--markdown", action="store_true", help="also print the results as table rows")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process:
        for factor in args.capacity_factor:
            bench_case(args, factor)
        return
    print(json.dumps({"machine": machine(args.database_url)}), flush=True)
    results = []
    for factor in args.capacity_factor:
        # A process per case: its peak memory is its own, and nothing is left over from the case before.
        command = [sys.executable, __file__, "--in-process", "--capacity-factor", str(factor),
                   "--recipients", str(args.recipients), "--workers", str(args.workers),
                   "--organisations", str(args.organisations), "--repeat", str(args.repeat)]
        command += ["--database-url", args.database_url] if args.database_url else []
        command += ["--time-limit", str(args.time_limit)] if args.time_limit else []
        child = subprocess.run(command, capture_output=True, text=True)
        for line in child.stdout.splitlines():
            print(line, flush=True)
            results.append(json.loads(line))
        if child.returncode:
            sys.exit(f"the case at capacity factor {factor:g} failed:\n{child.stderr[-3000:]}")
    if args.markdown:
        print(markdown(results))


if __name__ == "__main__":
    main()
