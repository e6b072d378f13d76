"""`servicehub bench day` end to end on a tiny district: prepared into a throw-away database of its own, every
organisation's day planned, checked and printed as a JSON line; a kept district is reused; bad options exit 2."""

from __future__ import annotations

import json
from datetime import date

from click.testing import CliRunner

from servicehub.extensions import db
from servicehub.scheduling import bench_day
from servicehub.scheduling.cli import bench_day_command

FIELDS = {"organisation", "visits", "workers", "placed", "bound", "urgent_placed", "urgent", "travel_min", "seconds",
          "violations", "status", "unplaced"}
TINY = ["--recipients", "60", "--workers", "8", "--organisations", "2", "--time-limit", "2"]  # 1 s may not see a first plan on a busy machine


def test_bench_day_plans_each_organisation_day_of_a_throw_away_district(tmp_path):
    runner = CliRunner()
    result = runner.invoke(bench_day_command, [*TINY, "--keep", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2  # both organisations have visits on the day
    for line in lines:
        assert line.keys() >= FIELDS
        assert 0 < line["placed"] <= line["bound"] <= line["visits"]
        assert line["urgent_placed"] <= line["urgent"] <= line["visits"]
        assert line["violations"] == 0
        assert not line["status"].startswith("FAILED")
        assert sum(line["unplaced"].values()) == line["visits"] - line["placed"]
        assert line["travel_min"] > 0
        assert line["limit_s"] == 2.0 and 2.0 <= line["seconds"] < 15  # the run's limit, as search_seconds cuts it
    district = bench_day.District(60, 8, 2)
    assert (tmp_path / f"{district.name}.db").exists()  # the throw-away database, kept where it was asked to be

    # Kept: the same district day reuses it; an organisation with no visits that day is a bad option.
    known = lines[0]["organisation"]
    again = runner.invoke(bench_day_command, [*TINY, "--keep", str(tmp_path), "--organisation", str(known)])
    assert again.exit_code == 0, again.output
    assert "reused" in again.stderr and "preparing" not in again.stderr
    assert [json.loads(line)["organisation"] for line in again.stdout.splitlines()] == [known]
    wrong = runner.invoke(bench_day_command, [*TINY, "--keep", str(tmp_path), "--organisation", "99999"])
    assert wrong.exit_code == 2
    assert "'--organisation'" in wrong.stderr and "has no visits on" in wrong.stderr

    # The hook a reference solver's numbers come in by: given the problem and the search seconds applied.
    database, meta, reused = bench_day.prepared_district(tmp_path, district)
    assert reused
    with bench_day.district_app(database).app_context():
        measured = bench_day.measure_day(known, date.fromisoformat(meta["day"]), 1.0, extras=[
            lambda problem, limit: {"anchor_visits": len(problem.visits), "anchor_limit": limit}])
        db.session.remove()
        db.engine.dispose()
    assert measured["extras"] == {"anchor_visits": lines[0]["visits"], "anchor_limit": 1.0}
    assert bench_day.day_line(measured, "x")["anchor_visits"] == lines[0]["visits"]


def test_bench_day_refuses_bad_numbers_before_preparing_anything(tmp_path):
    runner = CliRunner()
    for option, value in (("--recipients", "-5"), ("--time-limit", "0"), ("--time-limit", "301"),
                          ("--processes", "0"), ("--organisation", "-1"), ("--weekday", "sun")):
        result = runner.invoke(bench_day_command, ["--keep", str(tmp_path), option, value])
        assert result.exit_code == 2, (option, value, result.output)
        assert f"'{option}'" in result.stderr
    assert not any(tmp_path.iterdir())
