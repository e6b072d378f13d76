"""The first plan of a large day with breaks (DESIGN.md: "first plan of a 1,000-visit day with breaks in under
2 s"), and what each way of making it places after a few seconds.

    .venv/bin/python bench/first_plan.py [--visits 1000 --workers 120 --seed 7] [--limits 2 8]

The day is generated (deterministic per seed; plain data, no database): places in a 12 km square, travel at
15 km/h plus 2 minutes to park and walk in; workers 08:00-17:30 with a 30-minute lunch starting between 11:30
and 13:30, at most 12 visits; a fifth of the visits need a nurse (a quarter of the workers are), one in ten asks
for a woman; windows of two hours, a morning or afternoon, or the whole day; 30-90 minutes each; one in ten
urgent. Each way of solving runs in a process of its own, and every plan is checked by the independent validator.

- `insertion`: OR-Tools alone, parallel cheapest insertion with candidate lists, then guided local search.
- `pyvrp`: the default: PyVRP's plan of the relaxed day (hgs.py), repaired for breaks, then OR-Tools' search.
- "first plan": `solution_limit=1` under a generous cap; then each limit. "First plan complete at" is when the
  first complete plan was read into OR-Tools (PyVRP's path: `Plan.first_plan_s`); the rest of a run's time is
  OR-Tools' search from it.
Prints one JSON line per run and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from servicehub.scheduling.problem import Break, Problem, Visit, Worker
from servicehub.scheduling.solver import SolveOptions, solve
from servicehub.scheduling.validate import plan_violations


def generated_day(visits: int, workers: int, seed: int) -> Problem:
    """A synthetic home-care day with breaks, skills and gender requests (see the module's docstring)."""
    rng = random.Random(seed)
    n_depots = max(1, workers // 10)
    points = [(rng.uniform(0, 12), rng.uniform(0, 12)) for _ in range(n_depots + visits)]
    travel = tuple(tuple(0 if a == b else 2 + round(math.dist(a, b) * 4) for b in points) for a in points)
    crew = []
    for w in range(workers):
        crew.append(Worker(
            id=f"w{w}", start_location=w % n_depots, end_location=w % n_depots, shift=(480, 1050),
            skills=frozenset({"nurse"}) if w % 4 == 0 else frozenset(), gender="female" if w % 3 else "male",
            max_visits=12, breaks=(Break(690, 810, 30),),
        ))
    jobs = []
    for k in range(visits):
        kind = rng.random()
        if kind < 0.4:
            open_at = rng.randrange(480, 900, 30)
            window = (open_at, open_at + 120)
        elif kind < 0.7:
            window = (480, 690) if rng.random() < 0.5 else (810, 990)
        else:
            window = (480, 990)
        duration = rng.choice((30, 45, 60, 90))
        window = (window[0], min(window[1], 1050 - duration - 10))
        jobs.append(Visit(
            id=k, location=n_depots + k, duration=duration, window=window,
            skills=frozenset({"nurse"}) if rng.random() < 0.2 else frozenset(),
            gender="female" if rng.random() < 0.1 else None, urgent=rng.random() < 0.1,
        ))
    return Problem(visits=tuple(jobs), workers=tuple(crew), travel={"default": travel})


def one_run(args: tuple) -> dict:
    """Solve the generated day one way; placed, travel, seconds, violations."""
    visits, workers, seed, way, limit, first_only = args
    problem = generated_day(visits, workers, seed)
    options = SolveOptions(time_limit_s=limit, first_solution=way, solution_limit=1 if first_only else None)
    started = time.perf_counter()
    plan = solve(problem, options)
    seconds = time.perf_counter() - started
    urgent = {v.id for v in problem.visits if v.urgent}
    return {"way": way, "limit": "first plan" if first_only else limit, "visits": len(problem.visits),
            "workers": len(problem.workers), "placed": len(problem.visits) - len(plan.unplaced),
            "urgent_placed": len(urgent - set(plan.unplaced)), "urgent": len(urgent), "travel": plan.travel,
            "seconds": round(seconds, 2), "first_plan_s": plan.first_plan_s, "status": plan.status, "violations": len(plan_violations(problem, plan))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limits", type=float, nargs="+", default=[2.0, 8.0])
    parser.add_argument("--ways", nargs="+", default=["insertion", "pyvrp"])
    args = parser.parse_args()
    names = {"insertion": "parallel_cheapest_insertion", "pyvrp": "pyvrp"}
    runs = []
    for way in args.ways:
        runs.append((args.visits, args.workers, args.seed, names[way], 60.0 if way == "insertion" else 2.0, True))
        runs += [(args.visits, args.workers, args.seed, names[way], limit, False) for limit in args.limits]
    rows = []
    context = multiprocessing.get_context("spawn")
    for run in runs:  # one at a time, each in a fresh process: its own memory, nothing shared
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            row = pool.submit(one_run, run).result()
        print(json.dumps(row), flush=True)
        rows.append(row)
    print("\n| way | limit | placed | urgent | travel (min) | seconds | first plan complete at (s) | violations |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['way']} | {r['limit']} | {r['placed']} / {r['visits']} | {r['urgent_placed']} / {r['urgent']} | "
              f"{r['travel']:,} | {r['seconds']} | {r['first_plan_s'] or '—'} | {r['violations']} |")


if __name__ == "__main__":
    main()
