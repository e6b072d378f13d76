"""Home health care routing (Mankowska et al. 2014): ServiceHub's solver on the instances of
../shared/bench-data/hhc/, beside the best known results (mankowska_best.md). Each instance is solved by
`servicehub bench hhc` in its own process, as a user would run it.

    .venv/bin/python bench/hhc.py --time-limit 60 [--instances InstanzCPLEX_HCSRP_10_2,...] [--data DIR]

Prints one JSON line per instance (without the routes), then a Markdown table for bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "bench-data" / "hhc"
SERVICEHUB = ROOT / ".venv" / "bin" / "servicehub"


def best_known(data: Path) -> dict[str, dict[str, float]]:
    """Instance name (no .json) -> its best known distance, tardiness and total cost (mankowska_best.md)."""
    found = {}
    for line in (data / "mankowska_best.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0].endswith(".json") and re.fullmatch(r"[\d.]+", cells[4]):
            found[cells[0].removesuffix(".json")] = {
                "distance": float(cells[1]), "max_tardiness": float(cells[2]), "total_tardiness": float(cells[3]),
                "total_cost": float(cells[4])}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--instances", help="comma-separated names (default: every instance file in --data)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    best = best_known(args.data)
    names = (args.instances.split(",") if args.instances
             else sorted(p.stem for p in args.data.glob("*.json")))
    rows = []
    for name in names:
        out = subprocess.run([str(SERVICEHUB), "bench", "hhc", str(args.data / f"{name}.json"), "--time-limit",
                              str(args.time_limit), "--processes", str(args.processes)],
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout)
        result.pop("routes")
        known = best.get(name)
        result["gap_pct"] = round(100 * (result["total_cost"] / known["total_cost"] - 1), 2) if known else None
        print(json.dumps(result), flush=True)
        rows.append((result, known))
    print()
    print("| instance | services placed | syncs kept | distance | total tard. | max tard. | total cost | best known "
          "| gap | seconds |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for result, known in rows:
        print(f"| {result['instance']} | {'all' if not result['unplaced'] else len(result['unplaced'])} "
              f"| {'yes' if not result['violations'] else 'NO'} | {result['distance']:.2f} "
              f"| {result['total_tardiness']:.2f} | {result['max_tardiness']:.2f} | {result['total_cost']:.2f} "
              f"| {known['total_cost'] if known else '—'} | "
              f"{format(result['gap_pct'], '+.2f') + '%' if result['gap_pct'] is not None else '—'} | {result['seconds']} |")
    gaps = [r["gap_pct"] for r, _ in rows if r["gap_pct"] is not None]
    if gaps:
        print(f"\nmean gap to best known total cost: {statistics.mean(gaps):+.2f}%")


if __name__ == "__main__":
    main()
