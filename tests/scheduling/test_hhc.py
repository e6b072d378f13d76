"""Home-care benchmark instances (hhc.py, `servicehub bench hhc`): read and checked, solved with every service
placed and every synchronisation kept, written in the instances' solution form and scored; a file that is not an
instance is refused by name, with exit 2."""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner

from servicehub.scheduling import hhc
from servicehub.scheduling.cli import hhc_command
from servicehub.scheduling.solver import SolveOptions, solve
from servicehub.scheduling.validate import plan_violations

# An office and three patients on a line, 10 apart: p1 one service; p2 two at once; p3 two, the second 20 to 30
# after the first.
TINY = {
    "central_offices": [{"id": "d", "location": [0, 0]}],
    "services": [{"id": "s1", "default_duration": 10.5}, {"id": "s2", "default_duration": 10}],
    "caregivers": [{"id": "c1", "abilities": ["s1", "s2"]}, {"id": "c2", "abilities": ["s2"]}],
    "patients": [
        {"id": "p1", "location": [10, 0], "time_window": [0, 60], "required_caregivers": [{"service": "s1"}]},
        {"id": "p2", "location": [20, 0], "time_window": [30, 90],
         "required_caregivers": [{"service": "s1"}, {"service": "s2", "duration": 5}],
         "synchronization": {"type": "simultaneous"}},
        {"id": "p3", "location": [30, 0], "time_window": [100, 110],
         "required_caregivers": [{"service": "s2"}, {"service": "s1"}],
         "synchronization": {"type": "sequential", "distance": [20, 30]}},
    ],
    "distances": [[abs(i - j) * 10.25 for j in range(4)] for i in range(4)],
}


def write(tmp_path, data, name="tiny.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_an_instance_becomes_a_problem_with_its_rules():
    instance = hhc.parse_instance(copy.deepcopy(TINY), "tiny.json")
    problem = hhc.to_problem(instance)
    visits = {v.id: v for v in problem.visits}
    assert set(visits) == {"p1/s1", "p2/s1", "p2/s2", "p3/s2", "p3/s1"}
    assert visits["p1/s1"].duration == 1050 and visits["p2/s2"].duration == 500  # hundredths
    assert visits["p3/s1"].pair_gap == (2000, 3000) and visits["p3/s2"].pair_gap is None
    assert visits["p2/s1"].pair == visits["p2/s2"].pair == "p2" and visits["p2/s2"].pair_gap is None
    assert visits["p3/s1"].window[0] == 10000 and visits["p3/s1"].due == 11000  # latest soft, earliest hard
    assert problem.travel["default"][0][1] == 1025 and problem.workers[1].skills == {"s2"}


def test_a_tiny_instance_is_solved_whole_and_scored_from_its_own_numbers():
    instance = hhc.parse_instance(copy.deepcopy(TINY), "tiny.json")
    problem = hhc.to_problem(instance)
    plan = solve(problem, SolveOptions(time_limit_s=5, solution_limit=300))
    assert not plan.unplaced and plan_violations(problem, plan) == []
    routes = hhc.solution_routes(instance, plan)
    assert [r["caregiver_id"] for r in routes] == ["c1", "c2"]
    at = {(s["patient_id"], s["service_id"]): (r["caregiver_id"], s["arrival_time"], s["departure_time"])
          for r in routes for s in r["locations"]}
    assert at[("p2", "s1")][1] == at[("p2", "s2")][1] and at[("p2", "s1")][0] != at[("p2", "s2")][0]
    assert 20 <= at[("p3", "s1")][1] - at[("p3", "s2")][1] <= 30
    assert at[("p1", "s1")][2] - at[("p1", "s1")][1] == pytest.approx(10.5)
    score = hhc.score(instance, routes)
    late = [max(0, arrival - {"p1": 60, "p2": 90, "p3": 110}[p]) for (p, _), (_, arrival, _) in at.items()]
    assert score["total_tardiness"] == pytest.approx(sum(late), abs=1e-3)
    assert score["max_tardiness"] == pytest.approx(max(late), abs=1e-3)
    assert score["total_cost"] == pytest.approx((score["distance"] + sum(late) + max(late)) / 3, abs=1e-3)


def test_score_counts_distance_from_the_office_and_back():
    instance = hhc.parse_instance(copy.deepcopy(TINY), "tiny.json")
    routes = [{"caregiver_id": "c1", "locations": [
        {"patient_id": "p1", "service_id": "s1", "arrival_time": 70.0, "departure_time": 80.5}]},
        {"caregiver_id": "c2", "locations": []}]
    assert hhc.score(instance, routes) == {"distance": 20.5, "total_tardiness": 10.0, "max_tardiness": 10.0,
                                           "total_cost": round((20.5 + 20) / 3, 3)}


def broken(change):
    data = copy.deepcopy(TINY)
    change(data)
    return data


@pytest.mark.parametrize("data, message", [
    ([], "an instance is a JSON object"),
    (broken(lambda d: d.pop("caregivers")), "missing key 'caregivers'"),
    (broken(lambda d: d["distances"].pop()), "'distances' must be a 4x4 matrix"),
    (broken(lambda d: d["distances"][1].append(3)), "'distances' must be a 4x4 matrix"),
    (broken(lambda d: d["caregivers"][0]["abilities"].remove("s1")), "no caregiver can do service 's1'"),
    (broken(lambda d: d["patients"][0]["required_caregivers"][0].update(service="s9")), "'s9' is not in 'services'"),
    (broken(lambda d: d["patients"][1].pop("synchronization")), "patient 'p2': two services need 'synchronization'"),
    (broken(lambda d: d["patients"][2]["synchronization"].update(distance=[30, 20])), "'distance' [min, max]"),
    (broken(lambda d: d["patients"][0].update(time_window=[60, 0])), "patient 'p1': 'time_window'"),
    (broken(lambda d: d["distances"][0].__setitem__(1, "far")), "non-negative numbers"),
])
def test_a_file_that_is_not_an_instance_is_refused_by_name(data, message):
    with pytest.raises(hhc.InstanceError) as refused:
        hhc.parse_instance(data, "bad.json")
    assert message in str(refused.value)


def test_the_command_prints_one_json_line_in_solution_form(tmp_path):
    result = CliRunner().invoke(hhc_command, [str(write(tmp_path, TINY)), "--time-limit", "2", "--processes", "1"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output)
    assert {"instance", "distance", "total_tardiness", "max_tardiness", "total_cost", "seconds", "routes"} <= set(line)
    assert line["instance"] == "tiny" and line["unplaced"] == [] and line["violations"] == []
    assert sum(len(r["locations"]) for r in line["routes"]) == 5
    assert set(line["routes"][0]["locations"][0]) == {"patient_id", "service_id", "arrival_time", "departure_time"}


@pytest.mark.parametrize("content", ["not json", json.dumps({"patients": []})])
def test_the_command_exits_2_naming_what_is_wrong(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = CliRunner().invoke(hhc_command, [str(path)])
    assert result.exit_code == 2
    assert "bad.json" in result.output and ("not JSON" in result.output or "missing key 'services'" in result.output)
