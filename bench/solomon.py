"""Route quality on the Solomon VRPTW instances: ServiceHub's solver (OR-Tools) beside PyVRP at the same
time limit, with the gap to the best known distance (DIMACS convention: Euclidean distances truncated
to one decimal, total distance the objective).

    .venv/bin/python bench/solomon.py --time-limit 30 [--instances C101,R101] [--data ../shared/bench-data/solomon]
    .venv/bin/python bench/solomon.py --time-limit 60 --data ../shared/bench-data/homberger

Prints one JSON line per instance and solver, then a Markdown table for bench/README.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from servicehub.scheduling.benchmark import solve_solomon  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "bench-data" / "solomon"


def best_known(data: Path) -> dict[str, float]:
    """Best known distances, DIMACS distance-only convention: the set's bks.csv, or the table of its README.md
    (`| instance | distance |` rows, as the Gehring–Homberger set has)."""
    if (data / "bks.csv").exists():
        with (data / "bks.csv").open() as fh:
            return {r["instance"]: float(r["distance"]) for r in csv.DictReader(fh)
                    if r["convention"] == "dimacs_distance_only"}
    found = {}
    for line in (data / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and re.fullmatch(r"[\d.]+", cells[1]):
            found[cells[0]] = float(cells[1])
    return found


def solve_pyvrp(vrp_path: Path, time_limit_s: float, seed: int = 1) -> dict:
    """PyVRP on the VRPLIB file with DIMACS rounding (a bench-only dependency)."""
    import pyvrp
    from pyvrp.stop import MaxRuntime

    data = pyvrp.read(str(vrp_path), round_func="dimacs")
    started = time.perf_counter()
    result = pyvrp.solve(data, stop=MaxRuntime(time_limit_s), seed=seed, display=False)
    return {"distance": round(result.best.distance() / 10, 1), "vehicles": result.best.num_routes(),
            "feasible": result.best.is_feasible(), "seconds": round(time.perf_counter() - started, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--instances", help="comma-separated (default: every instance of the set's best-known list)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--processes", type=int, default=2, help="ServiceHub: independent searches in parallel")
    parser.add_argument("--skip-pyvrp", action="store_true")
    args = parser.parse_args()
    bks = best_known(args.data)
    rows = []
    for name in args.instances.split(",") if args.instances else sorted(bks):
        ours = solve_solomon(str(args.data / f"{name}.txt"), args.time_limit, processes=args.processes)
        ours.pop("routes")
        print(json.dumps({"solver": "servicehub", **ours}), flush=True)
        theirs = None if args.skip_pyvrp else solve_pyvrp(args.data / f"{name}.vrp", args.time_limit)
        if theirs:
            print(json.dumps({"solver": "pyvrp", "instance": name, **theirs}), flush=True)
        rows.append((name, ours, theirs))

    def gap(distance: float, name: str) -> float:
        return 100 * (distance - bks[name]) / bks[name]

    print("\n| instance | best known | ServiceHub (OR-Tools) | gap | vehicles | PyVRP | gap | vehicles |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    ours_gaps, their_gaps = [], []
    for name, ours, theirs in rows:
        g = gap(ours["distance"], name)
        ours_gaps.append(g)
        pyvrp_cells = "— | — | —"
        if theirs:
            tg = gap(theirs["distance"], name)
            their_gaps.append(tg)
            pyvrp_cells = f"{theirs['distance']:.1f} | {tg:+.2f}% | {theirs['vehicles']}"
        feasible = "" if ours["feasible"] else " (infeasible!)"
        print(f"| {name} | {bks[name]:.1f} | {ours['distance']:.1f}{feasible} | {g:+.2f}% | {ours['vehicles']} | {pyvrp_cells} |")
    mean_theirs = f"{statistics.mean(their_gaps):+.2f}%" if their_gaps else "—"
    print(f"| **mean** | | | **{statistics.mean(ours_gaps):+.2f}%** | | | **{mean_theirs}** | |")


if __name__ == "__main__":
    main()
