"""Matching and referrals through the API: proposals with reasons, the lifecycle, and bad steps refused."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from servicehub.database import utcnow
from servicehub.extensions import db
from servicehub.matching.models import Referral
from tests.registry import factories as f


@pytest.fixture
def market(app, demo, auth_headers):
    """Two organisations with cleaning (LC02) contracts in 大港; three recipients needing cleaning."""
    with app.app_context():
        org_a, org_b = f.organisation_ids()[:2]  # org_a is the demo provider's organisation
        for org in (org_a, org_b):
            f.worker(org)
        near_a = f.contract(org_a, lines=[{"service_type": "LC02", "unit_price_fen": 6000, "contracted_quantity": 500}])
        near_b = f.contract(org_b, lines=[{"service_type": "LC02", "unit_price_fen": 6500, "contracted_quantity": 500}])
        people = [f.recipient(name=f"对象{i}") for i in range(3)]
        needs = [f.need(p.id) for p in people]
        return {"org_a": org_a, "org_b": org_b, "contracts": (near_a.id, near_b.id),
                "lines": (near_a.lines[0].id, near_b.lines[0].id), "needs": [n.id for n in needs],
                "recipients": [p.id for p in people], "manager": auth_headers("manager"),
                "provider": auth_headers("provider")}


def run(client, market, **body):
    response = client.post("/api/v1/matching/runs", json=body, headers=market["manager"])
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def proposal_for(client, market, need_id):
    found = client.get("/api/v1/referrals", query_string={"need_id": need_id, "status": "proposed"},
                       headers=market["manager"]).get_json()
    assert len(found) == 1, found
    return found[0]


def act(client, headers, referral_id, action, reason=""):
    return client.post(f"/api/v1/referrals/{referral_id}/{action}", json={"reason": reason}, headers=headers)


def test_a_run_proposes_every_need_with_a_score_breakdown(client, market):
    result = run(client, market)
    assert (result["needs_considered"], result["proposed"], result["unmatched"]) == (3, 3, 0)
    outcome = result["outcomes"][0]
    proposal = outcome["proposal"]
    assert proposal["status"] == "proposed" and 0 < proposal["score"] <= 1
    assert set(proposal["score_breakdown"]) == {"distance", "performance", "continuity", "price", "load"}
    assert [a["organisation_id"] for a in outcome["alternatives"]] != []  # the other organisation, runner-up


def test_an_unmatchable_need_says_which_rule_blocks_each_organisation(client, app, market):
    with app.app_context():
        far = f.recipient(area=f.DINGMAO)  # contracts cover 大港 only
        need_id = f.need(far.id).id
    result = run(client, market, need_ids=[need_id])
    assert result["proposed"] == 0 and result["unmatched"] == 1
    outcome = result["outcomes"][0]
    assert outcome["proposal"] is None and outcome["reason"] == "no_eligible_organisation"
    assert {r["rule"] for r in outcome["ruled_out"]} == {"area_not_covered"}
    assert {r["organisation_id"] for r in outcome["ruled_out"]} == {market["org_a"], market["org_b"]}


def test_nothing_to_match_is_an_empty_run(client, demo, auth_headers):
    response = client.post("/api/v1/matching/runs", json={}, headers=auth_headers("manager"))
    assert response.status_code == 201
    assert response.get_json()["needs_considered"] == 0 and response.get_json()["outcomes"] == []


@pytest.fixture
def offered_to_a(client, app, market):
    """A need offered to the demo provider's organisation (org_a), through a manager's locked choice."""
    referral = client.post("/api/v1/referrals", json={"need_id": market["needs"][0], "contract_line_id": market["lines"][0]},
                           headers=market["manager"])
    assert referral.status_code == 201, referral.get_json()
    assert referral.get_json()["locked"] is True
    return act(client, market["manager"], referral.get_json()["id"], "offer").get_json()


def test_offer_accept_and_the_line_moves(client, app, market, offered_to_a):
    proposal = offered_to_a
    line = proposal["contract_line_id"]
    assert proposal["status"] == "offered" and proposal["offer_expires_at"]
    inbox = client.get("/api/v1/referrals", query_string={"status": "offered"}, headers=market["provider"]).get_json()
    assert [r["id"] for r in inbox] == [proposal["id"]]
    # the provider now sees the recipient referred to it, ID number masked
    seen = client.get(f"/api/v1/recipients/{proposal['recipient_id']}", headers=market["provider"]).get_json()
    assert "*" in seen["id_number"]
    contract = client.get(f"/api/v1/contracts/{proposal['contract_id']}", headers=market["manager"]).get_json()
    (offered_line,) = [li for li in contract["lines"] if li["id"] == line]
    assert offered_line["offered_units"] == pytest.approx(proposal["reserved_units"])
    accepted = act(client, market["provider"], proposal["id"], "accept").get_json()
    assert accepted["status"] == "active"  # the need starts today: accepted and active at once
    need = client.get(f"/api/v1/needs/{proposal['need_id']}", headers=market["manager"]).get_json()
    assert need["status"] == "active"
    contract = client.get(f"/api/v1/contracts/{proposal['contract_id']}", headers=market["manager"]).get_json()
    (line_view,) = [li for li in contract["lines"] if li["id"] == line]
    assert line_view["committed_units"] == pytest.approx(accepted["reserved_units"])
    assert line_view["offered_units"] == 0
    assert line_view["remaining_units"] == pytest.approx(500 - accepted["reserved_units"], abs=0.01)


def test_decline_needs_a_reason_and_the_next_run_skips_that_organisation(client, market, offered_to_a):
    rid = offered_to_a["id"]
    missing = act(client, market["provider"], rid, "decline")
    assert missing.status_code == 422 and "reason" in missing.get_json()["errors"]
    declined = act(client, market["provider"], rid, "decline", "人手不足").get_json()
    assert declined["status"] == "declined" and declined["reason"] == "人手不足"
    result = run(client, market, need_ids=[market["needs"][0]])
    assert result["outcomes"][0]["proposal"]["organisation_id"] == market["org_b"]


def test_bad_steps_are_refused_and_change_nothing(client, app, market, offered_to_a, auth_headers):
    rid = offered_to_a["id"]
    # a manager cannot accept for the organisation; another organisation's provider cannot even see it
    assert act(client, market["manager"], rid, "accept").status_code == 403
    with app.app_context():
        from servicehub.auth import services as auth_services
        from tests.support import DEMO_PASSWORD

        auth_services.create_user(username="other.provider", role="provider_admin", password=DEMO_PASSWORD,
                                  organisation_id=market["org_b"])
    other = client.post("/api/v1/auth/tokens", json={"username": "other.provider", "password": DEMO_PASSWORD})
    other_headers = {"Authorization": f"Bearer {other.get_json()['token']}"}
    assert act(client, other_headers, rid, "accept").status_code == 404
    assert act(client, market["provider"], rid, "accept").status_code == 200
    double = act(client, market["provider"], rid, "accept")
    assert double.status_code == 409 and "active" in double.get_json()["message"]
    assert act(client, market["provider"], rid, "close", "服务结束").status_code == 200
    closed_again = act(client, market["manager"], rid, "suspend", "住院")
    assert closed_again.status_code == 409
    with app.app_context():
        assert db.session.get(Referral, rid).status == "closed"


def test_offering_to_an_ineligible_organisation_is_refused_with_the_rule(client, app, market):
    with app.app_context():
        meals_only = f.contract(market["org_b"], lines=[{"service_type": "LC01", "unit_price_fen": 1500,
                                                         "contracted_quantity": 100}])
        line = meals_only.lines[0].id
    response = client.post("/api/v1/referrals", json={"need_id": market["needs"][0], "contract_line_id": line},
                           headers=market["manager"])
    assert response.status_code == 422
    assert response.get_json()["code"] == "no_line"


def test_a_locked_choice_survives_the_next_run(client, market, offered_to_a):
    # offered_to_a made a locked proposal and offered it; a second locked proposal for another need:
    locked = client.post("/api/v1/referrals", json={"need_id": market["needs"][1], "contract_line_id": market["lines"][1]},
                         headers=market["manager"]).get_json()
    run(client, market)
    kept = proposal_for(client, market, market["needs"][1])
    assert kept["id"] == locked["id"] and kept["organisation_id"] == market["org_b"]


def test_unlocked_proposals_are_superseded_not_lost(client, app, market):
    first = run(client, market)
    run(client, market)
    with app.app_context():
        old = db.session.scalars(select(Referral).where(Referral.run_id == first["id"])).all()
        assert old and {r.status for r in old} == {"withdrawn"}
        assert all("superseded" in r.reason for r in old)


def test_bulk_offer_is_all_or_none(client, app, market):
    run(client, market)
    ids = [proposal_for(client, market, n)["id"] for n in market["needs"]]
    assert act(client, market["manager"], ids[0], "offer").status_code == 200
    response = client.post("/api/v1/referrals/offer", json={"referral_ids": ids}, headers=market["manager"])
    assert response.status_code == 409 and str(ids[0]) in response.get_json()["message"]
    with app.app_context():
        assert [db.session.get(Referral, i).status for i in ids[1:]] == ["proposed", "proposed"]
    ok = client.post("/api/v1/referrals/offer", json={"referral_ids": ids[1:]}, headers=market["manager"])
    assert ok.status_code == 200 and [r["status"] for r in ok.get_json()] == ["offered", "offered"]


def test_an_unanswered_offer_is_flagged_and_reoffered_to_the_next_best(client, app, market, offered_to_a):
    rid = offered_to_a["id"]
    early = client.post(f"/api/v1/referrals/{rid}/reoffer", headers=market["manager"])
    assert early.status_code == 409  # not overdue yet
    with app.app_context():
        db.session.get(Referral, rid).offer_expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    overdue = client.get("/api/v1/referrals", query_string={"overdue": "true"}, headers=market["manager"]).get_json()
    assert [r["id"] for r in overdue] == [rid]
    again = client.post(f"/api/v1/referrals/{rid}/reoffer", headers=market["manager"])
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["status"] == "offered" and again.get_json()["organisation_id"] == market["org_b"]
    with app.app_context():
        assert db.session.get(Referral, rid).status == "withdrawn"


def test_two_live_referrals_for_one_need_are_impossible(client, app, market):
    run(client, market)
    proposal = proposal_for(client, market, market["needs"][0])
    with app.app_context():
        twin = Referral(**{k: getattr(db.session.get(Referral, proposal["id"]), k) for k in (
            "need_id", "contract_line_id", "contract_id", "organisation_id", "monthly_units", "reserved_units",
            "start_date")}, status="proposed")
        db.session.add(twin)
        db.session.commit()
        twin_id = twin.id
    assert act(client, market["manager"], proposal["id"], "offer").status_code == 200
    second = act(client, market["manager"], twin_id, "offer")
    assert second.status_code == 409
    with app.app_context():
        assert db.session.get(Referral, twin_id).status == "proposed"


def test_urgent_needs_get_the_last_units(client, app, market):
    with app.app_context():
        from servicehub.registry import services as registry

        tight = f.contract(market["org_a"], areas=[f.DINGMAO],
                           lines=[{"service_type": "LC02", "unit_price_fen": 6000, "contracted_quantity": 5}])
        people = [f.recipient(area=f.DINGMAO) for _ in range(2)]
        normal = f.need(people[0].id).id
        urgent = f.need(people[1].id, priority="urgent").id
        assert registry.get_contract(f.COMMAND_LINE, tight.id)
    result = run(client, market, town=f.DINGMAO)
    placed = {o["need_id"]: o["proposal"] for o in result["outcomes"]}
    assert placed[urgent] is not None and placed[normal] is None
    normal_outcome = next(o for o in result["outcomes"] if o["need_id"] == normal)
    assert normal_outcome["reason"] == "capacity"


def test_a_town_manager_matches_only_their_town(client, app, market, auth_headers):
    with app.app_context():
        elsewhere = f.need(f.recipient(area=f.DINGMAO).id).id
    result = client.post("/api/v1/matching/runs", json={}, headers=auth_headers("manager.dagang")).get_json()
    assert elsewhere not in {o["need_id"] for o in result["outcomes"]}
    assert result["needs_considered"] == 3


def test_who_may_do_what(client, market, auth_headers):
    assert client.post("/api/v1/matching/runs", json={}, headers=auth_headers("provider")).status_code == 403
    assert client.post("/api/v1/matching/runs", json={}, headers=auth_headers("auditor")).status_code == 403
    assert client.get("/api/v1/referrals", headers=auth_headers("auditor")).status_code == 200
    assert client.get("/api/v1/referrals", headers=auth_headers("caregiver")).status_code == 403
    assert client.post("/api/v1/matching/runs", json={"need_ids": []}, headers=market["manager"]).status_code == 422
    assert client.post("/api/v1/matching/runs", json={"town": "x"}, headers=market["manager"]).status_code == 422


def test_providers_never_see_unoffered_proposals(client, market):
    run(client, market)
    assert client.get("/api/v1/referrals", headers=market["provider"]).get_json() == []


def test_unmet_queue_lists_open_needs_with_their_proposals(client, market):
    run(client, market)
    queue = client.get("/api/v1/matching/unmet-needs", headers=market["manager"]).get_json()
    assert {q["need_id"] for q in queue} == set(market["needs"])
    assert all(q["proposal"]["status"] == "proposed" for q in queue)


def test_a_reoffer_with_nobody_else_changes_nothing(client, app, market, offered_to_a):
    rid = offered_to_a["id"]
    with app.app_context():
        from servicehub.registry import services as registry

        registry.update_contract(f.COMMAND_LINE, market["contracts"][1], {"status": "suspended"})
        db.session.get(Referral, rid).offer_expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    response = client.post(f"/api/v1/referrals/{rid}/reoffer", headers=market["manager"])
    assert response.status_code == 409 and response.get_json()["code"] == "no_eligible_organisation"
    with app.app_context():
        assert db.session.get(Referral, rid).status == "offered"


def test_a_town_manager_cannot_read_another_towns_run(client, app, market, auth_headers):
    with app.app_context():
        f.need(f.recipient(area=f.DINGMAO).id)
    run_id = run(client, market, town=f.DINGMAO)["id"]
    assert client.get(f"/api/v1/matching/runs/{run_id}", headers=auth_headers("manager.dagang")).status_code == 404
    assert client.get(f"/api/v1/matching/runs/{run_id}", headers=market["manager"]).status_code == 200


def test_a_provider_accepts_a_days_offers_at_once_all_or_none(client, app, market):
    run(client, market)
    proposals = [proposal_for(client, market, n) for n in market["needs"]]
    mine = [p["id"] for p in proposals if p["organisation_id"] == market["org_a"]]
    assert mine
    offered = client.post("/api/v1/referrals/offer", json={"referral_ids": mine}, headers=market["manager"])
    assert offered.status_code == 200, offered.get_json()
    refused = client.post("/api/v1/referrals/accept", json={"referral_ids": [*mine, 999999]},
                          headers=market["provider"])
    assert refused.status_code == 404 and "999999" in refused.get_json()["message"]
    with app.app_context():
        assert {db.session.get(Referral, i).status for i in mine} == {"offered"}  # none taken
    assert client.post("/api/v1/referrals/accept", json={"referral_ids": mine},
                       headers=market["manager"]).status_code == 403  # managers offer, providers answer
    accepted = client.post("/api/v1/referrals/accept", json={"referral_ids": mine}, headers=market["provider"])
    assert accepted.status_code == 200, accepted.get_json()
    assert {r["status"] for r in accepted.get_json()} <= {"accepted", "active"}
