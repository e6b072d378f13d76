"""Columns: Chinese or API headers, cells turned into what the API's create schemas take. Pure, no Flask."""

from datetime import date, datetime, time

import pytest

from servicehub.imports.columns import (
    KINDS,
    CellProblem,
    HeaderError,
    Lookups,
    as_availability,
    as_id_number,
    as_qualifications,
    column_letter,
    map_header,
    parse_date,
    parse_days,
    parse_time,
)
from servicehub.registry import schemas

LOOKUPS = Lookups(
    assistance_classes={"dibao": "dibao", "低保": "dibao", "tekun": "tekun", "特困": "tekun"},
    subclasses={"dibao": {"dibao_elderly": "dibao_elderly", "低保老人": "dibao_elderly"}, "tekun": {}},
    service_types={"lc01": "LC01", "助餐": "LC01"},
    qualifications={"rehab_therapist": "rehab_therapist", "康复治疗师": "rehab_therapist", "counsellor": "counsellor",
                    "心理咨询师": "counsellor"},
    organisations={"52321191mj0001001a": 1, "乐龄居家": 1},
    labels={"assistance_classes": ["低保", "特困"], "subclasses:dibao": ["低保老人"]},
)


def convert(kind, header, row):
    return map_header(KINDS[kind], header, check_required=False).convert(tuple(row), LOOKUPS)


def test_chinese_and_api_headers_mean_the_same_column():
    chinese = map_header(KINDS["recipients"], ["姓名", "身份证号", "救助类别", "所属社区（编码）", "住址", "纬度", "经度"])
    english = map_header(KINDS["recipients"], ["name", "ID_NUMBER", "assistance_class", "area", "address", "lat", "lon"])
    assert [c.field for _, c, _ in chinese.positions] == [c.field for _, c, _ in english.positions]
    assert chinese.header_for("area") == "所属社区（编码）"  # as the user wrote it, full-width brackets and all


def test_unknown_columns_are_ignored_and_listed():
    mapped = map_header(KINDS["workers"], ["工号", "姓名", "性别", "户籍", "", "家庭人口"])
    assert mapped.ignored == ["户籍", "家庭人口"]


def test_missing_required_columns_are_named():
    with pytest.raises(HeaderError) as caught:
        map_header(KINDS["recipients"], ["姓名", "住址", "备注"])
    missing = {p.field for p in caught.value.problems}
    assert missing == {"id_number", "assistance_class", "area", "lat", "lon"}
    assert "身份证号 (id_number)" in str(caught.value)


def test_needs_take_the_recipient_by_id_number_or_by_id():
    map_header(KINDS["needs"], ["身份证号", "服务项目编码", "数量", "开始日期"])
    map_header(KINDS["needs"], ["recipient_id", "service_type", "quantity", "start_date"])
    with pytest.raises(HeaderError, match="身份证号 \\(id_number\\) / 救助对象ID \\(recipient_id\\)"):
        map_header(KINDS["needs"], ["服务项目编码", "数量", "开始日期"])


def test_a_field_given_twice_is_refused():
    with pytest.raises(HeaderError, match="both give"):
        map_header(KINDS["needs"], ["身份证号", "服务项目编码", "数量", "开始日期", "服务时段", "时段开始"])


def test_every_required_schema_field_has_a_required_column():
    for kind, schema in (("recipients", schemas.RecipientCreateSchema), ("needs", schemas.NeedCreateSchema),
                         ("workers", schemas.WorkerCreateSchema)):
        required = {name for group in KINDS[kind].required for name in group}
        for name, f in schema().fields.items():
            if f.required:
                assert name in required, (kind, name)
            assert any(name in c.payload_keys for c in KINDS[kind].columns), (kind, name)


def test_a_recipient_row_becomes_the_api_payload():
    header = ["姓名", "身份证号", "救助类别", "救助子类", "是否独居", "残疾等级", "服务人员性别要求", "纬度", "联系电话", "认定有效期至"]
    payload, problems = convert("recipients", header,
                                ["王秀英", "32119119491231002x", "低保", "低保老人", "是", "二级", "同性", "32.2",
                                 13812345678, datetime(2026, 12, 31)])
    assert problems == []
    assert payload == {"name": "王秀英", "id_number": "32119119491231002X", "assistance_class": "dibao",
                       "subclass": "dibao_elderly", "lives_alone": True, "disability_grade": 2, "carer_gender": "same",
                       "lat": 32.2, "phone": "13812345678", "class_valid_until": "2026-12-31"}


def test_a_subclass_is_read_after_its_class_whatever_the_column_order():
    payload, problems = convert("recipients", ["救助子类", "救助类别"], ["低保老人", "低保"])
    assert problems == [] and payload == {"assistance_class": "dibao", "subclass": "dibao_elderly"}
    _, problems = convert("recipients", ["救助类别", "救助子类"], ["低保", "分散供养"])
    assert problems[0].column == "救助子类" and "低保老人" in problems[0].message % problems[0].params


def test_empty_cells_are_left_out_so_defaults_apply():
    payload, problems = convert("recipients", ["姓名", "备注", "纬度"], ["甲", "  ", None])
    assert payload == {"name": "甲"} and problems == []


def test_unknown_names_are_problems_of_their_column():
    _, problems = convert("recipients", ["救助类别", "性别"], ["低保户", "未知"])
    assert [(p.column, p.field) for p in problems] == [("救助类别", "assistance_class"), ("性别", "gender")]
    assert "低保、特困" in problems[0].message % problems[0].params
    assert "男、女" in problems[1].message % problems[1].params


def test_a_need_row_becomes_the_api_payload():
    header = ["身份证号", "姓名", "服务项目", "数量", "周期", "服务日", "服务时段", "优先级", "开始日期", "需求来源"]
    payload, problems = convert("needs", header, ["32119119491231002X", "王秀英", "助餐", 5.0, "每周", "周一至周五",
                                                  "10:30～12:30", "紧急", "2026/1/5", "主动发现"])
    assert problems == []
    assert payload == {"id_number": "32119119491231002X", "recipient_name": "王秀英", "service_type": "LC01",
                       "quantity": 5, "period": "week", "preferred_days": [1, 2, 3, 4, 5], "window_start": "10:30",
                       "window_end": "12:30", "priority": "urgent", "start_date": "2026-01-05", "source": "active_discovery"}


def test_a_worker_row_becomes_the_api_payload():
    header = ["所属组织", "工号", "姓名", "性别", "手机号", "出行方式", "可服务时间", "语言", "资质", "每日最多服务次数"]
    payload, problems = convert("workers", header, [
        "乐龄居家", 1001, "赵红梅", "女", "138 5290 1001", "电瓶车", "周一至周五 08:00-12:00,13:30-17:30；周六 09:00-12:00",
        "普通话，镇江话", "康复治疗师:2027-06-30;counsellor", 8.0])
    assert problems == []
    assert payload["organisation_id"] == 1 and payload["employee_no"] == "1001" and payload["phone"] == "13852901001"
    assert payload["travel_mode"] == "ebike" and payload["languages"] == ["普通话", "镇江话"]
    assert payload["availability"]["mon"] == [["08:00", "12:00"], ["13:30", "17:30"]]
    assert payload["availability"]["sat"] == [["09:00", "12:00"]] and "sun" not in payload["availability"]
    assert payload["qualifications"] == [{"code": "rehab_therapist", "expires_on": "2027-06-30"}, {"code": "counsellor"}]
    assert payload["max_visits_per_day"] == 8


@pytest.mark.parametrize(
    ("text", "days"),
    [("1,3,5", [1, 3, 5]), ("周一,周三", [1, 3]), ("周一、周三、周五", [1, 3, 5]), ("周一至周五", [1, 2, 3, 4, 5]),
     ("星期二 星期四", [2, 4]), ("周一三五", [1, 3, 5]), ("1-3", [1, 2, 3]), ("mon,Wed", [1, 3]), ("周日", [7]),
     ("工作日", [1, 2, 3, 4, 5]), ("周末", [6, 7])],
)
def test_preferred_days(text, days):
    assert parse_days(text) == days


@pytest.mark.parametrize("text", ["周八", "8", "周五至周一", "someday"])
def test_unknown_days_are_problems(text):
    with pytest.raises(CellProblem):
        parse_days(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2027-06-30", date(2027, 6, 30)), ("2027/6/30", date(2027, 6, 30)), ("2027.06.30", date(2027, 6, 30)),
     ("2027年6月30日", date(2027, 6, 30)), ("20270630", date(2027, 6, 30)), (datetime(2027, 6, 30), date(2027, 6, 30)),
     (46568, date(2027, 6, 30)), ("2027-06-30 00:00:00", date(2027, 6, 30))],
)
def test_dates(value, expected):
    assert parse_date(value) == expected


@pytest.mark.parametrize("value", ["2027-02-30", "明年", "30/06/2027"])
def test_bad_dates_are_problems(value):
    with pytest.raises(CellProblem, match="not a date"):
        parse_date(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("9:00", "09:00"), ("09:30", "09:30"), ("10：30", "10:30"), ("9点", "09:00"), ("9点半", "09:30"),
     (time(14, 0), "14:00"), (0.4375, "10:30")],
)
def test_times(value, expected):
    assert parse_time(value) == expected


def test_an_id_number_stored_as_a_number_is_a_clear_problem():
    with pytest.raises(CellProblem, match="stored as a number"):
        as_id_number(3.2119119491231e17, LOOKUPS, {})
    assert as_id_number(321191195007020210, LOOKUPS, {}) == "321191195007020210"  # still exact: accepted
    assert as_id_number(" 32119119491231002x ", LOOKUPS, {}) == "32119119491231002X"


def test_qualifications_with_certificate_and_expiry():
    assert as_qualifications("心理咨询师:XL2023-0815:2028-12-31", LOOKUPS, {}) == [
        {"code": "counsellor", "certificate_no": "XL2023-0815", "expires_on": "2028-12-31"}
    ]
    with pytest.raises(CellProblem, match="Unknown qualification"):
        as_qualifications("营养师", LOOKUPS, {})


def test_availability_without_days_or_times_is_a_problem():
    with pytest.raises(CellProblem):
        as_availability("08:00-12:00", LOOKUPS, {})
    with pytest.raises(CellProblem):
        as_availability("周一 上午", LOOKUPS, {})


def test_column_letters():
    assert [column_letter(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]


def test_numbers_excel_wrote_into_a_csv():
    with pytest.raises(CellProblem, match="stored as a number"):
        as_id_number("3.21191E+17", LOOKUPS, {})
    _, problems = convert("needs", ["数量", "每次时长(分钟)"], ["2.0", "1.5"])
    payload, _ = convert("needs", ["数量", "每次时长(分钟)"], ["2.0", "90"])
    assert problems == [] and payload == {"quantity": 2, "duration_min": 90}


@pytest.mark.parametrize("module", ["servicehub.imports.reader", "servicehub.imports.columns",
                                    "servicehub.imports.samples"])
def test_reading_and_converting_are_pure(module):
    import subprocess
    import sys

    code = (f"import importlib, sys; importlib.import_module({module!r}); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'flask', 'flask_sqlalchemy', 'flask_smorest', 'sqlalchemy', 'marshmallow', 'werkzeug'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"{module} pulls in {out.strip()}"
