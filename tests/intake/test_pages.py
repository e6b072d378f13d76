"""Application pages through the test client: the public form (the sum, Chinese labels, a bad form shown again
with its fields marked and nothing stored, the flood limit, the receipt with its reference and deadline), the
status check (right phone, wrong phone, unknown reference: the same 'not found'), the town's work queue (a town
manager sees the town's only; overdue items highlighted and escalations marked), staff registration, the steps
and the approval of emergency help on an application's page, the discovery rules, and who may see none of it."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from servicehub.database import utcnow
from servicehub.extensions import db
from servicehub.intake import services
from servicehub.intake.models import Application, DiscoveryRule
from servicehub.registry import services as registry
from servicehub.registry.models import Need, Recipient
from tests.registry import factories as f
from tests.registry.test_pages import csrf, field_errors, signed_in

SHANGHAI = ZoneInfo("Asia/Shanghai")
GANGNAN = "321191001001"  # 港南社区, a community of 大港街道


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def public_form(client) -> dict:
    """The hidden fields of the public form and the right answer to its sum."""
    html = client.get("/apply").get_data(as_text=True)
    question = re.search(r'data-testid="challenge">([^<]*)<', html).group(1)
    a, b = (int(x) for x in question.split("+"))
    return {
        "csrf_token": re.search(r'name="csrf-token" content="([^"]+)"', html).group(1),
        "challenge_token": re.search(r'name="challenge_token" type="hidden" value="([^"]+)"', html).group(1),
        "challenge_answer": str(a + b),
    }


def details(**overrides) -> dict:
    return {"name": "王阿姨", "phone": "138 0013 8000", "area": GANGNAN, "address": "大港街道幸福路12号",
            "situation": "家中失火，老人独居，暂无法做饭", "service_types": ["LC01", "LC02"], "urgency": "emergency",
            "contact_name": "王小明", "contact_phone": "13900139000", **overrides}


def apply(client, **overrides):
    return client.post("/apply", data={**public_form(client), **details(**overrides)})


def file_one(client, **overrides) -> str:
    """File an application on the public form; its reference."""
    response = apply(client, **overrides)
    assert response.status_code == 303, text(response)
    receipt = text(client.get(response.headers["Location"]))
    return re.search(r'data-testid="reference">([^<]*)<', receipt).group(1)


def stored(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Application))


def application_id(app, reference: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Application.id).where(Application.reference == reference))


def post(client, url, **data):
    return client.post(url, data={"csrf_token": csrf(client), **data})


def queue_rows(html: str) -> dict[str, str]:
    """{reference: the row's HTML} of the work queue."""
    return {m.group(1): m.group(0) for m in re.finditer(r'<tr data-application="\d+" data-reference="([^"]+)".*?</tr>',
                                                         html, re.S)}


# --- the public form ---------------------------------------------------------------------------


def test_the_public_form_asks_a_sum_in_chinese_and_offers_the_catalogue_and_the_areas(client, demo):
    response = client.get("/apply")
    assert response.status_code == 200
    html = text(response)
    assert re.search(r'data-testid="challenge">[2-9] \+ [2-9]<', html)
    assert re.search(r'<input id="challenge_token" name="challenge_token" type="hidden" value="[^"]+"', html)
    for words in ("申请救助", "需要帮助的人（姓名）", "回访电话", "发生了什么", "需要的服务", "情况紧急吗？",
                  "紧急：今天就需要帮助", "提交申请", "生活照料", "助餐", "康复护理", "港南社区", "大港街道（不确定哪个社区）"):
        assert words in html, words
    assert html.count('name="service_types"') == 21  # every service of the catalogue, once
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in html
    assert 'data-nav=' not in html  # nobody is signed in: no menu

    client.get("/lang/en")
    english = text(client.get("/apply"))
    assert "Apply for help" in english and "Meal delivery" in english and "Daily-living care" in english
    assert "Emergency: help is needed today" in english


def test_a_bad_application_comes_back_with_every_field_marked_and_nothing_is_stored(app, client, demo):
    response = apply(client, name="", phone="12345", area="", situation="", service_types=[], help_text="",
                     contact_phone="99")
    assert response.status_code == 422
    html = text(response)
    assert "未保存：请更正标出的字段。" in html
    assert field_errors(html, "name") == ["请填写需要帮助的人的姓名。"]
    assert field_errors(html, "phone") == ["请填写回访用的手机号（11位）或固定电话。"]
    assert field_errors(html, "area") == ["请选择住址所在的镇（街道）或社区（村）。"]
    assert field_errors(html, "situation") == ["请简要说明发生了什么。"]
    assert field_errors(html, "help_text") == ["请勾选服务，或写明需要什么帮助。"]
    assert field_errors(html, "contact_phone") == ["不是有效的电话号码。"]
    assert 'value="大港街道幸福路12号"' in html  # what was typed stays
    assert stored(app) == 0

    wrong = client.post("/apply", data={**public_form(client), **details(), "challenge_answer": "99"})
    assert wrong.status_code == 422
    html = text(wrong)
    assert field_errors(html, "challenge_answer") == ["答案错误或已过期，请计算新的算式。"]
    assert re.search(r'data-testid="challenge">[2-9] \+ [2-9]<', html)  # a new sum to answer
    assert re.search(r'name="challenge_answer" type="text" value=""', html)
    assert 'value="LC01" data-service-type="LC01" checked' in html and 'value="王阿姨"' in html
    assert stored(app) == 0


def test_a_flood_from_one_address_gets_a_clear_message_and_429(app, client, demo):
    for _k in range(5):
        assert client.post("/apply", data={**public_form(client), **details(), "challenge_answer": "99"}
                           ).status_code == 422
    response = apply(client)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    html = text(response)
    assert "短时间内从这里提交的申请过多" in html and 'data-testid="apply-form"' in html
    assert stored(app) == 0


def test_an_application_gets_its_reference_and_the_deadline_in_local_time(app, client, demo):
    response = apply(client)
    assert response.status_code == 303 and response.headers["Location"] == "/apply/done"
    receipt = text(client.get("/apply/done"))
    reference = re.search(r'data-testid="reference">([^<]*)<', receipt).group(1)
    assert re.fullmatch(r"SQ-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}", reference)
    with app.app_context():
        application = db.session.scalar(select(Application).where(Application.reference == reference))
        due = application.due_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
        assert application.urgency == "emergency" and application.community.code == GANGNAN
        assert application.service_types == ["LC01", "LC02"]
        assert registry.phone_in_clear(application) == "13800138000"
    assert f"紧急申请：工作人员将在 {due} 前（一小时内）与您联系。" in receipt
    assert f'href="/apply/status?reference={reference}"' in receipt
    assert client.get("/apply/done").status_code == 200  # a reload shows it again
    assert app.test_client().get("/apply/done").status_code == 302  # another browser has no receipt


# --- the status check ----------------------------------------------------------------------------


def test_the_status_check_needs_the_right_phone_and_shows_steps_without_notes(app, client, demo):
    reference = file_one(client)
    manager = signed_in(app, "manager.dagang")
    url = f"/intake/{application_id(app, reference)}"
    assert post(manager, f"{url}/steps", kind="contacted", note="内部备注：邻居有钥匙").status_code == 303

    token = re.search(r'name="csrf-token" content="([^"]+)"', text(client.get("/apply/status"))).group(1)
    prefilled = text(client.get(f"/apply/status?reference={reference}"))
    assert f'value="{reference}"' in prefilled

    ok = client.post("/apply/status", data={"csrf_token": token, "reference": reference.lower().replace("-", " "),
                                            "phone": "13800138000"})
    assert ok.status_code == 200
    html = text(ok)
    result = re.search(r'data-testid="status-result".*?</section>', html, re.S).group(0)
    assert 'data-status="contacted"' in result and "已联系" in result
    assert re.findall(r'data-step="(\w+)"', result) == ["submitted", "contacted"]
    assert "已受理申请" in result
    assert "邻居有钥匙" not in html and "manager.dagang" not in html  # no notes, no staff names
    also = client.post("/apply/status", data={"csrf_token": token, "reference": reference, "phone": "13900139000"})
    assert also.status_code == 200  # the contact person's phone works too

    wrong = client.post("/apply/status", data={"csrf_token": token, "reference": reference, "phone": "13800138001"})
    unknown = client.post("/apply/status", data={"csrf_token": token, "reference": "SQ-2222-2222",
                                                 "phone": "13800138000"})
    assert wrong.status_code == unknown.status_code == 404
    message = "未找到与该受理编号和电话号码相符的申请。请核对后重试。"
    assert message in text(wrong) and message in text(unknown)
    assert 'data-testid="status-result"' not in text(wrong)
    empty = client.post("/apply/status", data={"csrf_token": token, "reference": "", "phone": ""})
    assert empty.status_code == 422 and field_errors(text(empty), "reference")


# --- the work queue ------------------------------------------------------------------------------


def test_the_queue_of_a_town_manager_is_the_towns_and_the_district_sees_all(app, client, demo):
    dagang = file_one(client)
    dingmao = file_one(client, name="李大爷", phone="13700137000", area=f.DINGMAO, urgency="normal",
                       service_types=["PS01"])
    town_manager = signed_in(app, "manager.dagang")
    town = text(town_manager.get("/intake"))
    assert list(queue_rows(town)) == [dagang]
    assert town_manager.get(f"/intake/{application_id(app, dingmao)}").status_code == 404  # another town's
    assert "您看到的是本镇（街道）的申请。" in town and 'name="town"' not in town
    row = queue_rows(town)[dagang]
    for words in ("王阿姨", "大港街道", "港南社区", "网上申请", 'data-urgency="emergency"', "紧急", "待联系", "剩余"):
        assert words in row, words

    district = signed_in(app, "manager")
    everything = text(district.get("/intake"))
    assert list(queue_rows(everything)) == [dagang, dingmao]  # the emergency first
    assert list(queue_rows(text(district.get("/intake", query_string={"town": f.DINGMAO})))) == [dingmao]
    assert list(queue_rows(text(district.get("/intake", query_string={"urgency": "normal"})))) == [dingmao]
    assert list(queue_rows(text(district.get("/intake", query_string={"q": "李大爷"})))) == [dingmao]
    assert 'data-testid="register"' in everything

    auditor = text(signed_in(app, "auditor").get("/intake"))
    assert len(queue_rows(auditor)) == 2 and 'data-testid="register"' not in auditor


def test_an_overdue_application_is_highlighted_and_its_escalation_marked(app, client, demo):
    late = file_one(client)
    in_time = file_one(client, name="赵奶奶", phone="13600136000")
    with app.app_context():
        application = db.session.scalar(select(Application).where(Application.reference == late))
        application.due_at = utcnow() - timedelta(minutes=90)
        db.session.commit()
        assert services.escalate_overdue() == 1
    manager = signed_in(app, "manager.dagang")
    rows = queue_rows(text(manager.get("/intake")))
    assert 'class="overdue"' in rows[late] and 'class="overdue"' not in rows[in_time]
    assert "超时" in rows[late] and "data-overdue" in rows[late] and "data-overdue" not in rows[in_time]
    assert "已超时 1小时30分钟" in rows[late] or "已超时 1小时29分钟" in rows[late]
    assert "data-escalated" in rows[late] and "超时已转报区级" in rows[late]
    assert list(queue_rows(text(manager.get("/intake", query_string={"overdue": "yes"})))) == [late]
    assert list(queue_rows(text(manager.get("/intake", query_string={"overdue": "no"})))) == [in_time]
    detail = text(manager.get(f"/intake/{application_id(app, late)}"))
    assert "data-overdue" in detail and 'data-step="escalated"' in detail

    manager.get("/lang/en")
    english = queue_rows(text(manager.get("/intake")))[late]
    assert "Overdue" in english and "Escalated to the district" in english and "Emergency" in english


# --- staff registration --------------------------------------------------------------------------


def test_a_town_manager_registers_an_application_taken_by_phone(app, demo):
    manager = signed_in(app, "manager.dagang")
    form = text(manager.get("/intake/new"))
    assert "港南社区" in form and "谷阳社区" not in form  # the town's areas only
    missing = post(manager, "/intake/new", **details(source="", name=""))
    assert missing.status_code == 422
    assert field_errors(text(missing), "source") == ["请选择申请来源。"]
    assert stored(app) == 0
    refused = post(manager, "/intake/new", **details(source="hotline", name=""))
    assert refused.status_code == 422 and field_errors(text(refused), "name") == ["请填写需要帮助的人的姓名。"]

    done = post(manager, "/intake/new", **details(source="hotline", urgency="normal", note="12345转来"))
    assert done.status_code == 303
    page = text(manager.get(done.headers["Location"]))
    assert "已登记，受理编号 SQ-" in page and "12345热线" in page and "manager.dagang" in page
    assert "12345转来" in page  # the note of the first step, for staff
    other_town = post(manager, "/intake/new", **details(source="phone", area=f.DINGMAO))
    assert other_town.status_code == 403
    assert stored(app) == 1


# --- one application: steps, approval, documents ----------------------------------------------------


def test_steps_are_recorded_with_who_and_when_and_a_note_needs_its_text(app, client, demo):
    reference = file_one(client)
    manager = signed_in(app, "manager.dagang")
    url = f"/intake/{application_id(app, reference)}"
    page = text(manager.get(url))
    for words in ("王阿姨", "家中失火，老人独居，暂无法做饭", "助餐、助洁", "王小明", 'data-testid="step-form"',
                  'data-testid="approve-form"', 'data-testid="reject-form"'):
        assert words in page, words

    empty_note = post(manager, f"{url}/steps", kind="note", note="")
    assert empty_note.status_code == 422
    assert field_errors(text(empty_note), "note") == ["请说明原因（此步骤必填）。"]

    contacted = post(manager, f"{url}/steps", kind="contacted", note="电话联系，10分钟后到")
    assert contacted.status_code == 303 and contacted.headers["Location"] == url
    page = text(manager.get(url))
    assert "已记录：已联系（状态：已联系）。" in page
    steps = re.search(r'data-testid="steps">(.*?)</ol>', page, re.S).group(1)
    assert re.findall(r'data-step="(\w+)"', steps) == ["submitted", "contacted"]
    assert "manager.dagang" in steps and "电话联系，10分钟后到" in steps
    assert re.search(r"<time>\d{4}-\d{2}-\d{2} \d{2}:\d{2}</time>", steps)

    rejected = post(manager, f"{url}/reject", reason="经核实，家属已接回照顾")
    assert rejected.status_code == 303
    page = text(manager.get(url))
    assert 'data-status="rejected"' in page and 'data-testid="step-form"' not in page  # settled: no more actions
    again = post(manager, f"{url}/steps", kind="visited")
    assert again.status_code == 303
    assert "未作更改：该申请状态为“不予救助”，不能再办理。" in text(manager.get(url))


def test_emergency_help_is_approved_at_once_then_the_documents_come_in(app, client, demo):
    with app.app_context():
        f.contract(f.organisation_ids()[0])  # LC01 and LC02 in 大港
        f.worker(f.organisation_ids()[0])
    reference = file_one(client)
    manager = signed_in(app, "manager.dagang")
    url = f"/intake/{application_id(app, reference)}"
    page = text(manager.get(url))
    approve_form = re.search(r'data-testid="approve-form".*?</form>', page, re.S).group(0)
    assert '<input checked id="provisional" name="provisional" type="checkbox" value="y">' in approve_form
    assert 'value="LC01" data-service-type="LC01" checked' in approve_form
    assert 'value="PS01" data-service-type="PS01" checked' not in approve_form
    assert "身份证明 ID document" in approve_form  # the usual documents, one a line

    no_id = post(manager, f"{url}/approve", provisional="y", assistance_class="dibao", area=GANGNAN,
                 service_types=["LC01", "LC02"], quantity="1", documents="身份证明")
    assert no_id.status_code == 422
    assert field_errors(text(no_id), "id_number") == ["登记救助对象时必填。"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Recipient)) == 0

    approved = post(manager, f"{url}/approve", provisional="y", id_number=f.id_number(female=True),
                    assistance_class="dibao", area=GANGNAN, lives_alone="y", service_types=["LC01", "LC02"],
                    quantity="1", documents="身份证明\n家庭经济状况证明\n")
    assert approved.status_code == 303
    assert approved.headers["Location"] == url
    page = text(manager.get(approved.headers["Location"]))
    assert "已批准先行救助：王阿姨 的 2 项服务今天开始" in page
    assert 'data-status="provisional"' in page and 'data-testid="approve-form"' not in page
    with app.app_context():
        application = db.session.scalar(select(Application).where(Application.reference == reference))
        recipient_id = application.recipient_id
        needs = db.session.scalars(select(Need).where(Need.recipient_id == recipient_id)).all()
        assert {n.priority for n in needs} == {"urgent"} and len(needs) == 2
        assert db.session.get(Recipient, recipient_id).lives_alone
        documents = [(d.id, d.name) for d in application.documents]
    assert [name for _id, name in documents] == ["身份证明", "家庭经济状况证明"]
    assert f'href="/recipients/{recipient_id}" data-testid="recipient-link"' in page
    assert re.search(r'href="/matching\?run=\d+" data-testid="matching-link"', page)
    assert manager.get(f"/recipients/{recipient_id}").status_code == 200

    with app.app_context():  # the documents fall due: a reminder on the case, an alert in the town's inbox
        assert services.remind_documents(needs[0].start_date + timedelta(days=13)) == 2
    inbox = text(manager.get("/alerts"))
    assert "材料未补齐" in inbox and "仍缺材料 身份证明、家庭经济状况证明" in inbox
    assert f'href="{url}"' in inbox

    for document_id, _name in documents:
        assert post(manager, f"{url}/documents/{document_id}/received").status_code == 303
    page = text(manager.get(url))
    assert "材料已全部收齐：申请已批准。" in page and 'data-status="approved"' in page
    assert page.count("data-received") == 2
    twice = post(manager, f"{url}/documents/{documents[0][0]}/received")
    assert twice.status_code == 303 and "该材料已收到。" in text(manager.get(url))


# --- discovery rules -----------------------------------------------------------------------------


def test_the_district_sets_the_discovery_rules_and_runs_them(app, demo):
    manager = signed_in(app, "manager")
    page = text(manager.get("/intake/rules"))
    assert "独居老人连续未探访成功" in page and page.count('data-testid="rule-form"') == 3
    assert 'name="lives_alone_missed_checks-min_age" required type="number" value="60"' in page

    bad = post(manager, "/intake/rules/lives_alone_missed_checks", **{
        "lives_alone_missed_checks-enabled": "y", "lives_alone_missed_checks-min_age": "200",
        "lives_alone_missed_checks-in_a_row": "2", "lives_alone_missed_checks-service_type": "PS03"})
    assert bad.status_code == 422
    assert field_errors(text(bad), "lives_alone_missed_checks-min_age") == ["请填写 0 到 120 之间的整数。"]

    saved = post(manager, "/intake/rules/lives_alone_missed_checks", **{
        "lives_alone_missed_checks-min_age": "70", "lives_alone_missed_checks-in_a_row": "3",
        "lives_alone_missed_checks-service_type": "PS03"})  # no 'enabled': switched off
    assert saved.status_code == 303
    page = text(manager.get("/intake/rules"))
    assert "已保存：独居老人连续未探访成功。" in page and "最近3次探访关怀" in page and "年满70岁" in page
    with app.app_context():
        rule = db.session.get(DiscoveryRule, "lives_alone_missed_checks")
        assert not rule.enabled and rule.params == {"min_age": 70, "in_a_row": 3}

    ran = post(manager, "/intake/rules/run")
    assert ran.status_code == 303 and "主动发现已运行" in text(manager.get("/intake/rules"))

    town = signed_in(app, "manager.dagang")
    town_page = text(town.get("/intake/rules"))
    assert "规则由区民政局设置。" in town_page and 'data-testid="rule-form"' not in town_page
    assert post(town, "/intake/rules/class_lapsing", **{"class_lapsing-days": "10"}).status_code == 403
    assert post(town, "/intake/rules/run").status_code == 403


def test_the_district_keeps_the_working_calendar_and_the_towns_read_it(app, demo):
    manager = signed_in(app, "manager")
    page = text(manager.get("/intake/calendar", query_string={"year": 2027}))
    assert "工作日历" in page and "2027年尚未登记任何日期" in page and 'data-testid="day-form"' in page
    assert 'data-testid="calendar-link"' in text(manager.get("/intake"))

    refused = post(manager, "/intake/calendar", day="2027-02-11", kind="workday")  # a Thursday
    assert refused.status_code == 422
    assert field_errors(text(refused), "kind") == ["只有周六或周日可以调休上班：周一至周五本来就是工作日。"]
    assert field_errors(text(post(manager, "/intake/calendar", day="", kind="holiday")), "day") == ["请选择日期。"]

    assert post(manager, "/intake/calendar", day="2027-02-11", kind="holiday", name=" 春节 ").status_code == 303
    assert post(manager, "/intake/calendar", day="2027-02-20", kind="workday", name="春节").status_code == 303
    page = text(manager.get("/intake/calendar", query_string={"year": 2027}))
    assert "已保存：2027-02-20，调休上班。" in page
    rows = re.findall(r'<tr data-day="([^"]+)" data-kind="([^"]+)">\s*<td>[^<]*</td>\s*<td>([^<]*)</td>', page)
    assert rows == [("2027-02-11", "holiday", "周四"), ("2027-02-20", "workday", "周六")]
    assert page.count(">春节<") == 2
    with app.app_context():
        assert services.working_calendar().is_working(date(2027, 2, 20))

    town = signed_in(app, "manager.dagang")
    town_page = text(town.get("/intake/calendar", query_string={"year": 2027}))
    assert "工作日历由区民政局维护。" in town_page and 'data-testid="day-form"' not in town_page
    assert 'data-day="2027-02-11"' in town_page and 'data-testid="remove-day"' not in town_page
    refused = post(town, "/intake/calendar", day="2027-02-12", kind="holiday")
    assert refused.status_code == 403 and "工作日历由区民政局维护。" in text(refused)  # the service's words, in Chinese
    assert post(town, "/intake/calendar/2027-02-11/remove").status_code == 403

    assert post(manager, "/intake/calendar/2027-02-11/remove").status_code == 303
    page = text(manager.get("/intake/calendar", query_string={"year": 2027}))
    assert "已删除：2027-02-11。" in page and 'data-day="2027-02-11"' not in page
    assert signed_in(app, "provider").get("/intake/calendar").status_code == 403
    missing = manager.get("/intake/999999")
    assert missing.status_code == 404 and "没有这份申请。" in text(missing)
    english = signed_in(app, "manager")
    english.get("/lang/en")
    assert "No such application." in text(english.get("/intake/999999"))


# --- who may see what ----------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["provider", "caregiver"])
def test_providers_and_caregivers_are_refused(app, client, demo, username):
    reference = file_one(client)
    url = f"/intake/{application_id(app, reference)}"
    other = signed_in(app, username)
    for page in ("/intake", "/intake/new", "/intake/rules", url):
        assert other.get(page).status_code == 403, page
    assert post(other, f"{url}/steps", kind="contacted").status_code == 403
    assert post(other, f"{url}/approve", provisional="y").status_code == 403
    assert "data-nav=\"intake\"" not in text(other.get("/"))


def test_the_auditor_reads_but_does_not_act_and_strangers_sign_in_first(app, client, demo):
    reference = file_one(client)
    url = f"/intake/{application_id(app, reference)}"
    auditor = signed_in(app, "auditor")
    page = text(auditor.get(url))
    assert "王阿姨" in page and 'data-testid="step-form"' not in page
    assert post(auditor, f"{url}/steps", kind="contacted").status_code == 403
    for username in ("admin", "manager", "manager.dagang", "auditor"):
        assert 'data-nav="intake"' in text(signed_in(app, username).get("/")), username
    assert re.search(r'<a href="/intake" data-nav="intake" aria-current="page">救助申请</a>', page)
    anonymous = app.test_client().get("/intake")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_an_escalation_reaches_the_towns_alert_inbox_once_with_a_link_to_the_application(app, client, demo):
    late = file_one(client)
    with app.app_context():
        application = db.session.scalar(select(Application).where(Application.reference == late))
        application.due_at = utcnow() - timedelta(minutes=90)
        db.session.commit()
        assert services.escalate_overdue() == 1
        assert services.escalate_overdue(utcnow() + timedelta(hours=1)) == 0  # escalated once, alerted once
    town = signed_in(app, "manager.dagang")
    inbox = text(town.get("/alerts"))
    assert inbox.count(f"申请 {late}") == 1 and "无人联系" in inbox and "申请未按时响应" in inbox
    assert f'href="/intake/{application_id(app, late)}"' in inbox
    district = signed_in(app, "manager")
    district.get("/lang/en")
    assert f"Application {late}" in text(district.get("/alerts"))
    provider = signed_in(app, "provider").get("/alerts")
    assert provider.status_code == 200 and late not in text(provider)
