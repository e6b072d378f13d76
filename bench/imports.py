"""Benchmark: spreadsheet imports (servicehub.imports) — dry runs of large recipient files.

    .venv/bin/python bench/imports.py --rows 10000                       # SQLite, .xlsx and .csv
    .venv/bin/python bench/imports.py --rows 10000 --engine postgresql   # a throw-away PostgreSQL database
    .venv/bin/python bench/imports.py --rows 100000 --bad-row-in-the-middle --format csv --max-rows 100000

Each run builds a file of valid recipient rows (optionally one bad row in the middle), then times a
dry run through the service as the command line does: read, convert, validate every row with the
registry's rules in a SAVEPOINT, roll back. It also times reading alone, checks that the database
is unchanged, and reports the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flask_migrate
from sqlalchemy import func, select

from servicehub import create_app
from servicehub.auth.permissions import COMMAND_LINE
from servicehub.extensions import db
from servicehub.imports import services
from servicehub.imports.reader import SpreadsheetError, read_sheet
from servicehub.registry.models import Recipient
from tests.imports.support import csv_bytes, recipient_rows, xlsx
from tests.support import fresh_database, load_demo_district


def build(rows: int, fmt: str, bad_middle: bool) -> bytes:
    """The file: a header and `rows` valid recipients (one bad ID number in the middle if asked)."""
    table = recipient_rows(rows)
    if bad_middle:
        middle = table[rows // 2]
        middle[1] = middle[1][:17] + ("0" if middle[1][17] != "0" else "1")
    return xlsx(table) if fmt == "xlsx" else csv_bytes(table)


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(engine: str, rows: int, fmt: str, bad_middle: bool, max_rows: int) -> None:
    """Time one dry run and print one line of results."""
    data = build(rows, fmt, bad_middle)
    with tempfile.TemporaryDirectory() as directory, fresh_database(engine, Path(directory)) as url:
        app = create_app({"TESTING": True, "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": url,
                          "INSTANCE_PATH": directory, "SERVICEHUB_IMPORT_MAX_ROWS": max_rows,
                          "SERVICEHUB_IMPORT_MAX_BYTES": 60 * 1024 * 1024})
        with app.app_context():
            flask_migrate.upgrade()
            load_demo_district()
            started = time.perf_counter()
            try:
                sheet = read_sheet(data, f"bench.{fmt}", max_rows=max_rows)
                assert sum(1 for _ in sheet.rows()) == rows
            except SpreadsheetError:
                pass  # over the row limit: refused while counting
            reading = time.perf_counter() - started
            started = time.perf_counter()
            try:
                report = services.run_import(COMMAND_LINE, "recipients", io.BytesIO(data), f"bench.{fmt}", dry_run=True)
                outcome = f"{report.valid} valid, {report.invalid} invalid" + (
                    f" (row {report.problems[0].row}: {report.problems[0].column})" if report.problems else "")
            except services.DomainError as exc:
                outcome = f"refused: {exc.message}"
            elapsed = time.perf_counter() - started
            unchanged = db.session.scalar(select(func.count()).select_from(Recipient)) == 0
            db.session.remove()
            db.engine.dispose()
    print(f"{engine:<10} {fmt:<4} {rows:>7} rows  {len(data) / 1e6:6.1f} MB  read (2 passes) {reading:6.1f} s  "
          f"dry run {elapsed:7.1f} s  ({elapsed / rows * 1000:5.2f} ms/row)  db unchanged: {unchanged}  "
          f"peak RSS {peak_mb():5.0f} MB  -> {outcome}")


def main() -> None:
    """Parse the options and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--format", choices=["xlsx", "csv", "both"], default="both")
    parser.add_argument("--bad-row-in-the-middle", action="store_true")
    parser.add_argument("--max-rows", type=int, default=services.DEFAULT_MAX_ROWS)
    args = parser.parse_args()
    for fmt in ("xlsx", "csv") if args.format == "both" else (args.format,):
        run(args.engine, args.rows, fmt, args.bad_row_in_the_middle, args.max_rows)


if __name__ == "__main__":
    main()
