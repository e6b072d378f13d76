"""Matching pages through the test client: the unmet-needs queue (run, proposals with their reasons,
offer one or many, lock, choose an alternative, re-offer), a provider's inbox (accept, decline, suspend,
resume, close), who may do what, and refusals shown as messages — never a 500."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from types import SimpleNamespace

import pytest

from servicehub.auth.permissions import COMMAND_LINE
from servicehub.database import utcnow
from servicehub.extensions import db
from servicehub.matching import services
from servicehub.matching.models import Referral
from servicehub.registry import services as registry
from tests.registry import factories as make
from tests.registry.test_pages import csrf, field_errors, signed_in


@pytest.fixture
def market(app, demo):
    """Two organisations with cleaning (LC02) contracts in 大港, three needs there, one in 丁卯 nobody covers."""
    with app.app_context():
        own, other = make.organisation_ids()[:2]  # own: the demo provider's organisation
        for org in (own, other):
            make.worker(org)
        contracts = [
            make.contract(org, lines=[{"service_type": "LC02", "unit_price_fen": price, "contracted_quantity": 500}])
            for org, price in ((own, 6000), (other, 6500))
        ]
        people = [make.recipient(name=name) for name in ("王秀英", "李国华", "张桂兰")]
        needs = [make.need(p.id) for p in people]
        far = make.recipient(name="陈远", area=make.DINGMAO)
        return SimpleNamespace(
            own=own, other=other, contracts=[c.id for c in contracts], lines=[c.lines[0].id for c in contracts],
            needs=[n.id for n in needs], recipients=[p.id for p in people], far_need=make.need(far.id).id,
        )


def referral(app, referral_id) -> Referral:
    with app.app_context():
        found = db.session.get(Referral, referral_id)
        db.session.expunge(found)
        return found


def proposals(app) -> dict[int, int]:
    """{need id: id of its proposal}."""
    with app.app_context():
        items, _total = services.list_referrals(COMMAND_LINE, status="proposed", page_size=100)
        return {r.need_id: r.id for r in items}


def run_matching(app) -> dict[int, int]:
    with app.app_context():
        services.run_matching(COMMAND_LINE)
    return proposals(app)


def offered(app, need_id, line_id) -> int:
    """Offer the need on `line_id` (a manager's locked choice, then offered): the referral's id."""
    with app.app_context():
        chosen = services.propose(COMMAND_LINE, need_id, line_id)
        return services.act(COMMAND_LINE, chosen.id, "offer").id


def post(client, url, **data):
    return client.post(url, data={"csrf_token": csrf(client), **data})


def flashes(client, response) -> str:
    """The page a step went back to, with its messages (as text)."""
    assert response.status_code == 303, response.status_code
    return unescape(client.get(response.headers["Location"]).get_data(as_text=True))


def messages(html: str, kind: str) -> list[str]:
    """The flashed messages of one kind ('success' or 'error') on a page."""
    return [unescape(m).strip() for m in re.findall(rf'<div class="flash {kind}" role="status">(.*?)</div>', html, re.S)]


def row(html: str, attribute: str, value) -> str:
    match = re.search(rf'<tr [^>]*{attribute}="{value}".*?</tr>', html, re.S)
    assert match, f"no row {attribute}={value}"
    return match.group(0)


# --- the unmet-needs queue --------------------------------------------------------------------


def test_run_matching_from_the_page_shows_the_summary_proposals_and_the_rules(app, market):
    client = signed_in(app, "manager")
    page = client.get("/matching").get_data(as_text=True)
    assert 'data-testid="not-matched"' in page and 'data-testid="run-summary"' not in page
    response = post(client, "/matching/run", town="")
    assert response.status_code == 303 and re.fullmatch(r"/matching\?run=\d+", response.headers["Location"])
    html = flashes(client, response)
    assert messages(html, "success") and not messages(html, "error")
    summary = re.search(r'data-testid="run-summary".*?</dl>', html, re.S).group(0)
    numbers = dict(re.findall(r'data-testid="(\w+)">([\d.]+)<', summary))
    assert (numbers["considered"], numbers["proposed"], numbers["unmatched"], numbers["greedy"]) == ("4", "3", "1", "3")

    for need_id in market.needs:
        proposed = row(html, "data-need", need_id)
        assert 'data-result="proposed"' in proposed
        assert re.search(r'data-testid="score"[^>]*>\d+%<', proposed)
        factors = re.findall(r'data-factor="(\w+)"', proposed.split('data-testid="alternatives"')[0])
        assert factors == ["distance", "performance", "continuity", "price", "load"]
        distance = re.search(r'data-factor="distance".*?</li>', proposed, re.S).group(0)
        km = float(re.search(r'data-value="([\d.]+)"', distance).group(1))  # what was measured
        assert 0 <= km < 15 and 'data-weight="35%"' in distance and "35%</span>" in distance
        assert re.search(r'<span style="width: \d+%"></span>', distance)
        assert 'data-testid="alternatives"' in proposed and 'data-step="choose"' in proposed  # the other one
    unmatched = row(html, "data-need", market.far_need)
    assert 'data-result="unmatched"' in unmatched and 'data-reason="no_eligible_organisation"' in unmatched
    ruled_out = re.findall(r'data-rule="(\w+)" data-organisation="(\d+)"', unmatched)
    assert sorted(ruled_out) == sorted([("area_not_covered", str(market.own)), ("area_not_covered", str(market.other))])
    assert "Contract HT-" in unmatched  # the service's own sentence, with the contract named


def test_a_district_manager_runs_one_town_and_a_town_manager_their_own(app, market):
    client = signed_in(app, "manager")
    html = flashes(client, post(client, "/matching/run", town=make.DINGMAO))
    assert re.search(r'data-testid="considered">1<', html)
    town_manager = signed_in(app, "manager.dagang")
    page = town_manager.get("/matching").get_data(as_text=True)
    assert 'name="town"' not in page and 'data-testid="run"' in page
    html = flashes(town_manager, post(town_manager, "/matching/run"))
    assert re.search(r'data-testid="considered">3<', html)
    assert f'data-need="{market.far_need}"' not in html


def test_the_queue_filters(app, market):
    with app.app_context():
        urgent = make.need(market.recipients[0], service_type="LC01", priority="urgent").id
    client = signed_in(app, "manager")

    def listed(query=""):
        return [int(i) for i in re.findall(r'<tr data-need="(\d+)"', client.get(f"/matching?{query}").get_data(as_text=True))]

    assert listed()[0] == urgent  # urgent first
    assert set(listed()) == {*market.needs, market.far_need, urgent}
    assert listed("priority=urgent") == [urgent]
    assert listed(f"town={make.DINGMAO}") == [market.far_need]
    assert set(listed("service_type=LC02")) == {*market.needs, market.far_need}
    assert set(listed("priority=soon&page=x&run=nope")) == set(listed())  # nonsense is ignored, not a 500


def test_one_click_offer(app, market):
    ids = run_matching(app)
    client = signed_in(app, "manager")
    html = flashes(client, post(client, f"/referrals/{ids[market.needs[0]]}/offer", next="/matching?priority="))
    (done,) = messages(html, "success")
    assert "王秀英" in done
    assert referral(app, ids[market.needs[0]]).status == "offered"
    assert f'data-need="{market.needs[0]}"' not in html.split('data-testid="queue"')[1]  # no longer unmet


def test_bulk_offer_is_all_or_none_and_the_refusal_is_shown(app, market):
    ids = run_matching(app)
    client = signed_in(app, "manager")
    first, *rest = [ids[n] for n in market.needs]
    post(client, f"/referrals/{first}/offer")
    response = client.post("/matching/offer", data={"csrf_token": csrf(client), "referral_ids": [first, *rest],
                                                     "next": "/matching"})
    html = flashes(client, response)
    (refusal,) = messages(html, "error")
    assert f"Referral {first}" in refusal and "offered" in refusal
    assert [referral(app, r).status for r in rest] == ["proposed", "proposed"]
    html = flashes(client, client.post("/matching/offer", data={"csrf_token": csrf(client), "referral_ids": rest}))
    (done,) = messages(html, "success")
    assert "2" in done
    assert [referral(app, r).status for r in rest] == ["offered", "offered"]
    nothing = flashes(client, post(client, "/matching/offer"))
    assert messages(nothing, "error") and not messages(nothing, "success")


def test_lock_and_unlock_a_proposal(app, market):
    ids = run_matching(app)
    proposal = ids[market.needs[0]]
    client = signed_in(app, "manager")
    html = flashes(client, post(client, f"/referrals/{proposal}/lock"))
    assert referral(app, proposal).locked and "data-locked" in row(html, "data-need", market.needs[0])
    run_matching(app)
    assert referral(app, proposal).status == "proposed"  # the next run kept it
    flashes(client, post(client, f"/referrals/{proposal}/unlock"))
    assert not referral(app, proposal).locked
    post(client, f"/referrals/{proposal}/offer")
    html = flashes(client, post(client, f"/referrals/{proposal}/lock"))
    assert messages(html, "error") and referral(app, proposal).status == "offered"


def test_choose_an_alternative(app, market):
    ids = run_matching(app)
    need = market.needs[0]
    current = referral(app, ids[need])
    other_line = next(line for line in market.lines if line != current.contract_line_id)
    client = signed_in(app, "manager")
    page = client.get("/matching").get_data(as_text=True)
    assert f'name="line_id" value="{other_line}"' in row(page, "data-need", need)
    html = flashes(client, post(client, f"/matching/needs/{need}/choose", line_id=str(other_line)))
    chosen = referral(app, proposals(app)[need])
    assert chosen.contract_line_id == other_line and chosen.locked
    assert referral(app, current.id).status == "withdrawn"
    assert "data-locked" in row(html, "data-need", need)


def test_choosing_a_line_that_cannot_serve_the_need_is_refused_with_its_rule(app, market):
    ids = run_matching(app)
    with app.app_context():
        meals = make.contract(market.other, lines=[{"service_type": "LC01", "unit_price_fen": 1500,
                                                    "contracted_quantity": 100}]).lines[0].id
    client = signed_in(app, "manager")
    html = flashes(client, post(client, f"/matching/needs/{market.needs[0]}/choose", line_id=str(meals)))
    (refusal,) = messages(html, "error")
    assert "has no LC02 line" in refusal
    assert proposals(app)[market.needs[0]] == ids[market.needs[0]]  # nothing changed


def test_an_overdue_offer_is_listed_and_reoffered(app, market):
    rid = offered(app, market.needs[0], market.lines[0])
    client = signed_in(app, "manager")
    assert 'data-testid="overdue"' not in client.get("/matching").get_data(as_text=True)
    early = flashes(client, post(client, f"/referrals/{rid}/reoffer"))
    assert messages(early, "error") and referral(app, rid).status == "offered"  # not overdue yet
    with app.app_context():
        db.session.get(Referral, rid).offer_expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    page = client.get("/matching").get_data(as_text=True)
    assert 'data-overdue' in row(page, "data-referral", rid)
    html = flashes(client, post(client, f"/referrals/{rid}/reoffer"))
    assert messages(html, "success") and not messages(html, "error")
    assert referral(app, rid).status == "withdrawn"
    with app.app_context():
        (again,), _total = services.list_referrals(COMMAND_LINE, need_id=market.needs[0], status="offered")
        assert again.organisation_id == market.other


# --- the provider's inbox -----------------------------------------------------------------------


def test_the_inbox_lists_only_the_providers_offers(app, market):
    mine = offered(app, market.needs[0], market.lines[0])
    theirs = offered(app, market.needs[1], market.lines[1])
    run_matching(app)  # proposals (not offered) are never shown to a provider
    client = signed_in(app, "provider")
    html = client.get("/referrals").get_data(as_text=True)
    offers = html.split('data-testid="offers"')[1].split("</table>")[0]
    assert re.findall(r'data-referral="(\d+)"', offers) == [str(mine)]
    assert f'data-referral="{theirs}"' not in html
    mine_row = row(html, "data-referral", mine)
    assert "王秀英" in mine_row and "助洁" in mine_row and "每周 1 次" in mine_row
    (shown,) = re.findall(r'data-testid="id-number">([^<]*)<', mine_row)
    assert re.fullmatch(r"\d{4}\*{10}[\dX]{4}", shown)  # masked for a provider
    assert 'data-step="accept"' in mine_row and 'data-step="decline"' in mine_row
    assert 'data-testid="offers-count">1<' in html
    assert client.get(f"/referrals/{theirs}").status_code == 404


def test_accepting_moves_the_contract_lines_quantities(app, market):
    rid = offered(app, market.needs[0], market.lines[0])
    held = referral(app, rid).reserved_units
    client = signed_in(app, "provider")
    contract = client.get(f"/contracts/{market.contracts[0]}").get_data(as_text=True)
    line = row(contract, "data-line", "LC02")
    assert re.search(r'data-testid="offered">([\d.,]+)<', line).group(1) == f"{held:g}"
    html = flashes(client, post(client, f"/referrals/{rid}/accept", next="/referrals"))
    assert "王秀英" in messages(html, "success")[0]
    assert referral(app, rid).status == "active"  # the need starts today
    assert "data-referral" in html.split('data-testid="serving"')[1]
    line = row(client.get(f"/contracts/{market.contracts[0]}").get_data(as_text=True), "data-line", "LC02")
    assert re.search(r'data-testid="committed">([\d.,]+)<', line).group(1) == f"{held:g}"
    assert re.search(r'data-testid="offered">([\d.,]+)<', line).group(1) == "0"
    remaining = float(re.search(r'data-testid="remaining">([\d.,]+)<', line).group(1).replace(",", ""))
    assert remaining == pytest.approx(500 - held, abs=0.01)


def test_decline_needs_a_reason(app, market):
    rid = offered(app, market.needs[0], market.lines[0])
    client = signed_in(app, "provider")
    missing = post(client, f"/referrals/{rid}/decline", reason="  ", next="/referrals")
    assert missing.status_code == 422
    html = missing.get_data(as_text=True)
    assert len(field_errors(html, "reason")) == 1
    assert 'value="/referrals"' in html  # a second try still goes back to the inbox
    assert referral(app, rid).status == "offered"
    html = flashes(client, post(client, f"/referrals/{rid}/decline", reason="人手不足", next="/referrals"))
    assert messages(html, "success")
    assert (referral(app, rid).status, referral(app, rid).reason) == ("declined", "人手不足")


def test_suspend_resume_and_close(app, market):
    rid = offered(app, market.needs[0], market.lines[0])
    provider = signed_in(app, "provider")
    post(provider, f"/referrals/{rid}/accept")
    assert post(provider, f"/referrals/{rid}/suspend", reason="").status_code == 422
    flashes(provider, post(provider, f"/referrals/{rid}/suspend", reason="住院"))
    assert referral(app, rid).status == "suspended"
    page = provider.get("/referrals").get_data(as_text=True)
    assert 'data-referral-status="suspended"' in row(page, "data-referral", rid)
    assert 'data-step="resume"' in row(page, "data-referral", rid)
    flashes(provider, post(provider, f"/referrals/{rid}/resume"))
    assert referral(app, rid).status == "active"
    manager = signed_in(app, "manager")
    html = flashes(manager, post(manager, f"/referrals/{rid}/close", reason="服务结束"))
    assert messages(html, "success")
    assert (referral(app, rid).status, referral(app, rid).reason) == ("closed", "服务结束")


def test_a_stale_form_shows_a_message_not_an_error(app, market):
    rid = offered(app, market.needs[0], market.lines[0])
    client = signed_in(app, "provider")
    post(client, f"/referrals/{rid}/accept")
    again = post(client, f"/referrals/{rid}/accept", next="/referrals")
    assert again.status_code == 303 and again.headers["Location"] == "/referrals"
    html = flashes(client, again)
    (refusal,) = messages(html, "error")
    assert "服务中" in refusal  # the referral's state now, in words
    declined_late = post(client, f"/referrals/{rid}/decline", reason="太忙")
    assert messages(flashes(client, declined_late), "error")
    assert referral(app, rid).status == "active"
    manager = signed_in(app, "manager")
    assert messages(flashes(manager, post(manager, f"/referrals/{rid}/offer")), "error")
    assert referral(app, rid).status == "active"


def test_the_referral_page_shows_the_need_and_its_history(app, market):
    rid = offered(app, market.needs[0], market.lines[0])
    client = signed_in(app, "provider")
    post(client, f"/referrals/{rid}/accept")
    html = unescape(client.get(f"/referrals/{rid}").get_data(as_text=True))
    assert "王秀英" in html and 'data-testid="breakdown"' in html
    assert "*" in re.search(r'data-testid="id-number">([^<]*)<', html).group(1)
    actions = re.findall(r'<tr data-action="(\w+)"', html)
    assert actions[0] == "create" and "offer" in actions and "accept" in actions
    assert re.search(r"<div>[^<]+ → 服务中</div>", html)
    assert 'data-step="suspend"' in html and 'data-step="accept"' not in html


# --- who may do what ------------------------------------------------------------------------------


def test_caregivers_and_auditors_cannot_post(app, market):
    ids = run_matching(app)
    rid = offered(app, market.needs[1], market.lines[0])
    caregiver = signed_in(app, "caregiver")
    assert caregiver.get("/matching").status_code == 403
    assert caregiver.get("/referrals").status_code == 403
    assert post(caregiver, f"/referrals/{rid}/accept").status_code == 403
    auditor = signed_in(app, "auditor")
    assert auditor.get("/matching").status_code == 403
    listing = auditor.get("/referrals").get_data(as_text=True)
    assert f'data-referral="{rid}"' in listing and "data-step" not in listing  # read-only
    assert "data-step" not in auditor.get(f"/referrals/{rid}").get_data(as_text=True)
    for url in ("/matching/run", "/matching/offer", f"/referrals/{ids[market.needs[0]]}/offer",
                f"/referrals/{rid}/accept", f"/referrals/{rid}/decline", f"/referrals/{rid}/suspend",
                f"/referrals/{ids[market.needs[0]]}/lock", f"/matching/needs/{market.needs[0]}/choose"):
        assert post(auditor, url, reason="x").status_code == 403, url
    provider = signed_in(app, "provider")
    assert provider.get("/matching").status_code == 403
    assert post(provider, f"/referrals/{ids[market.needs[0]]}/offer").status_code == 403
    manager = signed_in(app, "manager")
    assert post(manager, f"/referrals/{rid}/accept").status_code == 403  # a manager cannot answer for them
    assert referral(app, rid).status == "offered"
    assert referral(app, ids[market.needs[0]]).status == "proposed"


def test_posts_without_the_csrf_token_are_refused(app, market):
    ids = run_matching(app)
    client = signed_in(app, "manager")
    assert client.post(f"/referrals/{ids[market.needs[0]]}/offer").status_code == 400
    assert referral(app, ids[market.needs[0]]).status == "proposed"


def test_the_managers_referral_list_filters(app, market):
    mine = offered(app, market.needs[0], market.lines[0])
    theirs = offered(app, market.needs[1], market.lines[1])
    client = signed_in(app, "manager")

    def listed(query=""):
        return {int(i) for i in re.findall(r'<tr data-referral="(\d+)"', client.get(f"/referrals?{query}").get_data(as_text=True))}

    assert listed() == {mine, theirs}
    assert listed(f"organisation_id={market.other}") == {theirs}
    assert listed("status=accepted") == set()
    assert listed(f"town={make.DINGMAO}") == set()
    assert listed("status=nonsense&organisation_id=x") == {mine, theirs}
    page = client.get("/referrals").get_data(as_text=True)
    assert 'data-step="withdraw"' in row(page, "data-referral", mine) and 'data-step="accept"' not in page


def test_dashboards_count_the_work_waiting(app, market):
    offered(app, market.needs[0], market.lines[0])
    manager = signed_in(app, "manager").get("/").get_data(as_text=True)
    assert 'data-testid="unmet-needs">3<' in manager and 'href="/matching"' in manager  # 4 needs, 1 offered
    town = signed_in(app, "manager.dagang").get("/").get_data(as_text=True)
    assert 'data-testid="unmet-needs">2<' in town
    provider = signed_in(app, "provider").get("/").get_data(as_text=True)
    assert 'data-testid="offers-waiting">1<' in provider and 'href="/referrals"' in provider


def test_navigation(app, market):
    def nav(username):
        return re.findall(r'data-nav="([a-z]+)"', signed_in(app, username).get("/").get_data(as_text=True))

    assert "matching" in nav("manager") and "referrals" not in nav("manager")
    assert "referrals" in nav("provider") and "matching" not in nav("provider")
    assert not {"matching", "referrals"} & set(nav("auditor") + nav("caregiver"))


def test_the_pages_are_english_on_request(app, market):
    run_matching(app)
    client = signed_in(app, "manager")
    client.get("/lang/en")
    html = client.get("/matching").get_data(as_text=True)
    assert "Unmet needs" in html and "Contract does not cover the area" in html and "weight" in html


def test_a_refused_reoffer_says_no_one_else_can_serve_and_changes_nothing(app, market):
    with app.app_context():
        only = registry.get_contract(COMMAND_LINE, market.contracts[1])
        registry.update_contract(COMMAND_LINE, only.id, {"status": "suspended"})
    rid = offered(app, market.needs[0], market.lines[0])
    with app.app_context():
        db.session.get(Referral, rid).offer_expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    client = signed_in(app, "manager")
    html = flashes(client, post(client, f"/referrals/{rid}/reoffer"))
    assert messages(html, "error") == ["目前没有其他社会组织能承接此需求，原派单保持不变。"]
    assert referral(app, rid).status == "offered"
