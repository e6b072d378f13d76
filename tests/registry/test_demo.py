"""The demo district: reproducible, valid, realistic in its counts, and the committed files match the generator."""

import math
import random
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import date, timedelta

import pytest

from servicehub.config import DEFAULT_DISTRICT_BBOX
from servicehub.registry import demo, rules
from servicehub.registry.cli import DEMO_DIR, read_demo_files, write_demo_files
from servicehub.registry.identifiers import (
    credit_code_problem,
    id_number_birth_date,
    id_number_gender,
    id_number_problem,
    mobile_problem,
)

BOX = rules.BoundingBox.parse(DEFAULT_DISTRICT_BBOX)
DEMO = demo.build_demo()
CATALOGUE = demo.catalogue()


def by_recipient(data):
    needs = defaultdict(list)
    for need in data["needs"]:
        needs[need["recipient"]].append(need)
    return needs


def km(lat1, lon1, lat2, lon2):
    return math.hypot((lat1 - lat2) * 111.0, (lon1 - lon2) * 111.32 * math.cos(math.radians(lat1)))


# --- reproducible ----------------------------------------------------------------------------


def test_same_seed_same_district_other_seed_other_people():
    assert demo.build_demo(7) == demo.build_demo(7)
    assert demo.build_demo(7)["recipients"] != demo.build_demo(8)["recipients"]
    assert demo.build_demo(7)["areas"] == demo.build_demo(8)["areas"]  # the same district whatever the seed


def test_committed_demo_files_match_the_generator(tmp_path):
    assert read_demo_files() == DEMO, "run `servicehub demo build` and commit seed_data/demo/"
    for path in write_demo_files(demo.build_demo(), tmp_path):
        assert path.read_bytes() == (DEMO_DIR / path.name).read_bytes(), path.name


def test_the_generator_is_a_pure_module():
    code = ("import sys, servicehub.registry.demo as d; d.build_demo(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'flask', 'sqlalchemy', 'marshmallow'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- every record passes the registry's rules ------------------------------------------------


def test_every_record_passes_the_registry_rules():
    assert demo.district_problems(DEMO, BOX) == []


def test_the_rule_check_finds_broken_records():
    broken = demo.build_demo()
    broken["recipients"][0]["id_number"] = broken["recipients"][0]["id_number"][:17] + "Z"
    broken["needs"].append({**broken["needs"][0]})  # the same recipient and type twice
    child = next(r for r in broken["recipients"] if r["assistance_class"] == "child_in_difficulty")
    broken["needs"].append({**broken["needs"][1], "recipient": child["id_number"], "service_type": "RC01"})
    broken["contracts"][0]["fundings"][0]["amount_fen"] += 1
    problems = "\n".join(demo.district_problems(broken, BOX))
    assert "check digit" in problems or "17 digits" in problems
    assert "needs: 1 duplicate" in problems
    assert "may not receive" in problems
    assert "add up to" in problems


def test_identifiers_are_valid_and_consistent():
    assert all(credit_code_problem(o["credit_code"]) is None for o in DEMO["organisations"])
    assert all(mobile_problem(w["phone"]) is None for w in DEMO["workers"])
    for r in DEMO["recipients"]:
        number = r["id_number"]
        assert id_number_problem(number) is None
        assert number[:6] in {"321191", "321102", "321111", "321112"}
        born = id_number_birth_date(number)
        years = {"child_in_difficulty": (2010, 2021), "elderly_alone": (1930, 1960)}.get(r["assistance_class"], (1930, 2002))
        assert years[0] <= born.year <= years[1], (r["assistance_class"], born)
        assert id_number_gender(number) in ("male", "female")
    assert len({r["id_number"] for r in DEMO["recipients"]}) == 147


def test_every_need_is_eligible_for_its_recipients_class():
    classes = {r["id_number"]: CATALOGUE["classes"][r["assistance_class"]] for r in DEMO["recipients"]}
    for need in DEMO["needs"]:
        category = CATALOGUE["types"][need["service_type"]]["category"]
        assert category in classes[need["recipient"]]["categories"], need


# --- the shape of the district ---------------------------------------------------------------


def test_towns_and_communities():
    areas = DEMO["areas"]
    towns = {a["code"]: a for a in areas if a["level"] == "town"}
    communities = [a for a in areas if a["level"] == "community"]
    assert [a["level"] for a in areas[:1]] == ["district"] and len(towns) == 5
    per_town = Counter(c["parent"] for c in communities)
    assert set(per_town) == set(towns) and all(6 <= n <= 8 for n in per_town.values())
    for c in communities:
        town = towns[c["parent"]]
        assert len(c["code"]) == 12 and c["code"].startswith(town["code"])
        assert km(c["lat"], c["lon"], town["lat"], town["lon"]) <= 2.01
    assert all(BOX.contains(a["lat"], a["lon"]) for a in areas)


def test_stations_by_kind_each_run_by_a_fitting_organisation():
    kinds = Counter(s["kind"] for s in DEMO["stations"])
    assert kinds == {"social_work_station": 5, "home_care_centre": 30, "disability_home": 16,
                     "inclusive_education_centre": 2, "child_rehab_centre": 2, "child_care_home": 2}
    names = {o["credit_code"]: o["name_zh"] for o in DEMO["organisations"]}
    fitting = {"social_work_station": "社会工作", "home_care_centre": ("居家养老", "助餐"), "disability_home": "残疾人",
               "inclusive_education_centre": "儿童", "child_rehab_centre": "康复", "child_care_home": "儿童"}
    for s in DEMO["stations"]:
        words = fitting[s["kind"]]
        assert any(w in names[s["organisation"]] for w in ((words,) if isinstance(words, str) else words)), s
    codes = [s["code"] for s in DEMO["stations"]]
    assert {c[:3] for c in codes} == {"SW-", "HC-", "DH-", "IE-", "CR-", "CC-"} and len(set(codes)) == 57
    community_codes = {a["code"] for a in DEMO["areas"] if a["level"] == "community"}
    assert all(s["area"] in community_codes for s in DEMO["stations"])


def test_workers_fit_their_organisations():
    workers = DEMO["workers"]
    assert 55 <= len(workers) <= 65
    names = {o["credit_code"]: o["name_zh"] for o in DEMO["organisations"]}
    by_org = defaultdict(list)
    for w in workers:
        by_org[names[w["organisation"]]].append(w)
    assert len(by_org) == 8 and all(len(ws) >= 4 for ws in by_org.values())

    def holders(org_word, code):
        org = next(name for name in by_org if org_word in name)
        return sum(any(q["code"] == code for q in w["qualifications"]) for w in by_org[org])

    assert holders("康复服务", "rehab_therapist") >= 3 and holders("康复服务", "doctor") >= 1
    assert holders("心理咨询", "counsellor") == len(by_org["镇江新区安馨心理咨询服务中心"])
    assert holders("儿童关爱", "special_education") >= 2
    assert {w["gender"] for w in workers} == {"male", "female"}
    assert Counter(w["travel_mode"] for w in workers).most_common(1)[0][0] == "ebike"
    expiries = [date.fromisoformat(q["expires_on"]) for w in workers for q in w["qualifications"]]
    soon = [d for d in expiries if demo.REFERENCE_DATE <= d <= demo.REFERENCE_DATE + timedelta(days=30)]
    assert 2 <= len(soon) <= 5 and sum(d > demo.REFERENCE_DATE for d in expiries) > 0.8 * len(expiries)
    stations = {s["code"]: s for s in DEMO["stations"]}
    for w in workers:
        assert rules.availability_problems(w["availability"]) == {}
        assert set(w["availability"]) >= {"mon", "wed", "fri"}
        assert w["max_minutes_per_day"] == 480 and 8 <= w["max_visits_per_day"] <= 10
        if w["start_station"]:
            station = stations[w["start_station"]]
            assert station["organisation"] == w["organisation"]
            assert (w["start_lat"], w["start_lon"]) == (station["lat"], station["lon"])
    assert any(w["start_station"] for w in workers) and any(not w["start_station"] for w in workers)
    assert any("sat" in w["availability"] for w in workers)


def test_recipients_across_the_classes():
    recipients = DEMO["recipients"]
    assert len(recipients) == 147
    classes = Counter(r["assistance_class"] for r in recipients)
    assert classes["dibao"] == 50 and 35 <= classes["elderly_alone"] <= 45 and 20 <= classes["child_in_difficulty"] <= 30
    assert {"tekun", "severe_disability", "dibao_edge", "expenditure_hardship"} <= set(classes)
    low_income_disabled = [r for r in recipients if r["subclass"] == "dibao_severe_disability"]
    assert len(low_income_disabled) == 50 and all(r["disability_grade"] in (1, 2) for r in low_income_disabled)
    assert all(r["lives_alone"] for r in recipients if r["assistance_class"] == "elderly_alone")
    assert sum(bool(r["family_carer_name"]) for r in recipients) > 0.7 * len(recipients)
    assert {"same", "female"} <= {r["carer_gender"] for r in recipients}
    community_codes = {a["code"]: a for a in DEMO["areas"] if a["level"] == "community"}
    for r in recipients:
        community = community_codes[r["area"]]
        assert community["name_zh"] in r["address"]
        assert km(r["lat"], r["lon"], community["lat"], community["lon"]) <= 1.0
        subclasses = {s[0] for s in CATALOGUE["classes"][r["assistance_class"]]["subclasses"]}
        assert r["subclass"] in subclasses or (r["subclass"] is None and not subclasses)


def test_need_lists():
    needs = by_recipient(DEMO)
    assert set(needs) == {r["id_number"] for r in DEMO["recipients"]}
    assert all(1 <= len(lst) <= 4 for lst in needs.values())
    respite = {n["recipient"] for n in DEMO["needs"] if n["service_type"] == "RC01"}
    assert len(respite) == 18
    homes = {r["id_number"] for r in DEMO["recipients"] if r["subclass"] == "dibao_severe_disability"}
    assert all({n["service_type"] for n in needs[h]} & {"LC02", "LC03", "LC06"} for h in homes)
    for need in DEMO["needs"]:
        service_type = CATALOGUE["types"][need["service_type"]]
        assert date(2026, 1, 1) <= date.fromisoformat(need["start_date"]) <= date(2026, 12, 31)
        assert need["duration_min"] == service_type["default_duration_min"]
        if need["period"] == "week":
            assert len(need["preferred_days"]) == need["quantity"]
    meals = [n for n in DEMO["needs"] if n["service_type"] == "LC01"]
    assert meals and all(n["quantity"] == 5 and n["preferred_days"] == [1, 2, 3, 4, 5] for n in meals)
    assert all((n["window_start"], n["window_end"]) == ("10:30", "12:30") for n in meals)
    frequencies = {"LC02": {1, 2}, "LC03": {1}, "RH01": {2}, "PS03": {1, 2}, "CD01": {2}, "RC01": {1, 2}}
    for need in DEMO["needs"]:
        if need["service_type"] in frequencies:
            assert need["period"] == "week" and need["quantity"] in frequencies[need["service_type"]]
    priorities = Counter(n["priority"] for n in DEMO["needs"])
    assert 0 < priorities["urgent"] < priorities["normal"] / 5
    assert Counter(n["source"] for n in DEMO["needs"]).most_common(1)[0][0] == "assessment"


def test_contracts_are_funded_and_hold_the_demand():
    contracts = DEMO["contracts"]
    assert len(contracts) == 8
    assert sorted(c["organisation"] for c in contracts) == sorted(o["credit_code"] for o in DEMO["organisations"])
    names = {c["name_zh"]: c for c in contracts}
    assert {li["service_type"] for li in names["低保重残居家照护项目"]["lines"]} == {"LC02", "LC03", "LC06", "RC01"}
    assert {li["service_type"] for li in names["独居老人爱心午餐项目"]["lines"]} == {"LC01", "PS03"}
    assert "困境儿童关爱项目" in names
    towns = sorted(a["code"] for a in DEMO["areas"] if a["level"] == "town")
    for c in contracts:
        assert (c["start_date"], c["end_date"]) == ("2026-01-01", "2026-12-31") and c["status"] == "active"
        assert sum(f["amount_fen"] for f in c["fundings"]) == c["budget_fen"]
        assert {f["source"] for f in c["fundings"]} == {"government", "charity", "organisation"}
        assert sum(li["unit_price_fen"] * li["contracted_quantity"] for li in c["lines"]) <= c["budget_fen"]
        for line in c["lines"]:
            reference = CATALOGUE["types"][line["service_type"]]["reference_price_fen"]
            assert 0.85 * reference <= line["unit_price_fen"] <= 1.15 * reference
        assert sorted(c["areas"]) == towns and c["eligible_classes"]
    assert sum(c["budget_fen"] for c in contracts) == pytest.approx(100_000_000, rel=0.05)
    contracted, wanted = Counter(), Counter()
    for c in contracts:
        for line in c["lines"]:
            contracted[line["service_type"]] += line["contracted_quantity"]
    for need in DEMO["needs"]:
        wanted[need["service_type"]] += demo.need_demand(need)
    assert all(contracted[code] >= units for code, units in wanted.items()), (contracted, wanted)


def test_every_need_has_a_contract_that_offers_and_serves_it():
    classes = {r["id_number"]: r["assistance_class"] for r in DEMO["recipients"]}
    for need in DEMO["needs"]:
        assert any(need["service_type"] in {li["service_type"] for li in c["lines"]}
                   and classes[need["recipient"]] in c["eligible_classes"] for c in DEMO["contracts"]), need


def test_need_demand_counts_whole_weeks_and_months_within_the_period():
    weekly = {"service_type": "LC01", "quantity": 5, "period": "week", "start_date": "2026-12-18", "end_date": None}
    assert demo.need_demand(weekly) == 5 * 2  # 18–31 December: 14 days
    monthly = {"service_type": "RH04", "quantity": 1, "period": "month", "start_date": "2025-06-01",
               "end_date": "2026-02-10"}
    assert demo.need_demand(monthly) == 2 * 3  # January and February 2026, three hours an escort
    assert demo.need_demand({**weekly, "start_date": "2027-01-04"}) == 0


# --- bigger districts of the same shape ------------------------------------------------------


@pytest.mark.parametrize("shape", [demo.Shape(300, 40, 5, scale=True), demo.Shape(40, 3, 1, scale=True),
                                   demo.Shape(1000, 100, 20, scale=True)], ids=str)
def test_scaled_districts_are_valid_and_shaped_like_the_demo(shape):
    data = demo.build_district(11, shape, avoid=frozenset(r["id_number"] for r in DEMO["recipients"]))
    assert demo.district_problems(data, BOX) == []
    assert len(data["recipients"]) == shape.recipients and len(data["organisations"]) == shape.organisations
    assert len(data["workers"]) == shape.workers
    assert len(data["contracts"]) == max(shape.organisations, len(demo.PROFILES))
    assert 1.8 <= len(data["needs"]) / shape.recipients <= 2.6
    assert not {r["id_number"] for r in data["recipients"]} & {r["id_number"] for r in DEMO["recipients"]}
    assert not {o["credit_code"] for o in data["organisations"]} & {o["credit_code"] for o in DEMO["organisations"]}
    assert not {s["code"] for s in data["stations"]} & {s["code"] for s in DEMO["stations"]}
    assert data["areas"] == DEMO["areas"]
    assert sum(c["budget_fen"] for c in data["contracts"]) >= shape.budget_fen


# --- staffing by workload ----------------------------------------------------------------------


def lunches(count: int) -> list[dict]:
    """`count` lunch needs, Monday to Friday, in the catalogue's 10:30-12:30 window."""
    return [{"service_type": "LC01", "quantity": 5, "period": "week", "preferred_days": [1, 2, 3, 4, 5],
             "window_start": "10:30", "window_end": "12:30", "duration_min": 15, "start_date": "2026-01-05",
             "end_date": None}] * count


def test_a_narrow_window_asks_for_more_workers_than_its_minutes_over_the_day():
    meals = demo.PROFILE_BY_KEY["meals"]
    # 12 lunches a day, 20 minutes each with travel: 240 minutes inside a 120-minute window (not 240 of 420 a day)
    assert demo.workers_needed(lunches(12), meals) == pytest.approx(240 / 120 / demo.UTILISATION)
    ended = [{**need, "end_date": "2026-06-30"} for need in lunches(12)]
    assert demo.workers_needed(ended, meals) == 0  # courses that have ended keep nobody busy


def test_workload_staffing_shares_the_workers_by_what_the_needs_ask_for():
    shape = demo.Shape(2000, 150, 8, scale=True, staffing="workload")
    data = demo.build_district(11, shape)
    orgs = demo.build_organisations(random.Random(11), shape)
    needed = demo.workload_weights(orgs, data["recipients"], data["needs"])
    staffed = Counter(w["organisation"] for w in data["workers"])
    assert demo.district_problems(data, BOX) == [] and sum(staffed.values()) == 150
    assert [staffed[org.record["credit_code"]] for org, _ in demo.deals_of(orgs)] == demo.apportion(150, needed, 1)
    by_profile = {profile.key: staffed[org.record["credit_code"]] for org, profile in demo.deals_of(orgs)}
    head_counts = Counter(w["organisation"] for w in demo.build_district(11, replace(shape, staffing="profile"))["workers"])
    meal_service = next(org.record["credit_code"] for org, p in demo.deals_of(orgs) if p.key == "meals")
    assert by_profile["meals"] > 2 * head_counts[meal_service]  # the lunch rush needs hands
    # The needs are drawn before the workers: more or fewer workers, the same recipients and needs.
    other = demo.build_district(11, replace(shape, workers=90))
    assert (other["recipients"], other["needs"]) == (data["recipients"], data["needs"])
    with pytest.raises(ValueError):
        demo.Shape(staffing="by_hand")
