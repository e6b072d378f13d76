"""The sample import files in seed_data/samples/ that a manager can copy, and the code that writes them.

Pure module. The rows fit the demo district (its community codes — one row gives a town's code, which is
accepted too —, coordinates, the first demo organisation and one of its stations), carry valid ID numbers, and are imported by the tests, so the samples stay
valid. `servicehub imports samples` writes them again; a test checks the committed files match.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

from servicehub.imports.columns import KINDS
from servicehub.registry.identifiers import id_number_check_digit

# The demo's first organisation (by credit code), which the demo provider account runs.
SAMPLE_ORGANISATION = "52321191MJ0001001A"


def sample_id_number(born: date, serial: int, female: bool) -> str:
    """A valid (fictitious) resident ID number of the district: area, birth date, serial, gender, check digit."""
    sequence = serial * 10 + (2 if female else 1)
    first17 = f"321191{born:%Y%m%d}{sequence:03d}"
    return first17 + id_number_check_digit(first17)


_PEOPLE = [  # name, birth date, female, serial
    ("王秀英", date(1942, 3, 15), True, 1),
    ("李德明", date(1950, 7, 2), False, 2),
    ("张桂兰", date(1938, 11, 20), True, 3),
    ("陈志强", date(1975, 5, 8), False, 4),
    ("刘思雨", date(2014, 9, 1), True, 5),
]
_ID = {name: sample_id_number(born, serial, female) for name, born, female, serial in _PEOPLE}

RECIPIENTS = [
    {"姓名": "王秀英", "身份证号": _ID["王秀英"], "救助类别": "低保", "救助子类": "低保老人", "认定有效期至": "2026-12-31",
     "残疾等级": "", "是否独居": "否", "所属社区(编码)": "321191001001", "住址": "大港街道港南社区港南路18号2栋301室",
     "纬度": 32.2131, "经度": 119.6942, "联系电话": "13813401234", "家庭照护人": "王建国", "照护人电话": "13905281234",
     "服务人员性别要求": "同性", "沟通语言": "镇江话", "备注": "行动不便，上门请先电话联系"},
    {"姓名": "李德明", "身份证号": _ID["李德明"], "救助类别": "特困", "救助子类": "分散供养", "认定有效期至": "",
     "残疾等级": "", "是否独居": "是", "所属社区(编码)": "321191002001", "住址": "丁卯街道谷阳社区谷阳路6号",
     "纬度": 32.1386, "经度": 119.5135, "联系电话": "0511-85561234", "家庭照护人": "", "照护人电话": "",
     "服务人员性别要求": "不限", "沟通语言": "", "备注": ""},
    {"姓名": "张桂兰", "身份证号": _ID["张桂兰"], "救助类别": "独居老人", "救助子类": "高龄独居", "认定有效期至": "",
     "残疾等级": "", "是否独居": "是", "所属社区(编码)": "321191003201", "住址": "丁岗镇丁岗村88号",
     "纬度": 32.1576, "经度": 119.6551, "联系电话": "15852901234", "家庭照护人": "张卫东", "照护人电话": "18952901234",
     "服务人员性别要求": "女", "沟通语言": "", "备注": ""},
    {"姓名": "陈志强", "身份证号": _ID["陈志强"], "救助类别": "重度残疾", "救助子类": "肢体残疾", "认定有效期至": "",
     "残疾等级": "一级", "是否独居": "否", "所属社区(编码)": "321191004201", "住址": "大路镇大路村三组15号",
     "纬度": 32.2231, "经度": 119.7691, "联系电话": "13952901234", "家庭照护人": "陈静", "照护人电话": "13952905678",
     "服务人员性别要求": "男", "沟通语言": "", "备注": "需喘息服务"},
    {"姓名": "刘思雨", "身份证号": _ID["刘思雨"], "救助类别": "困境儿童", "救助子类": "残疾儿童", "认定有效期至": "2027-08-31",
     "残疾等级": "三级", "是否独居": "否", "所属社区(编码)": "321191005", "住址": "姚桥镇华山村一组7号",
     "纬度": 32.2448, "经度": 119.8142, "联系电话": "", "家庭照护人": "刘海燕", "照护人电话": "17752901234",
     "服务人员性别要求": "女", "沟通语言": "", "备注": ""},
]

NEEDS = [
    {"身份证号": _ID["王秀英"], "姓名": "王秀英", "服务项目编码": "LC01", "数量": 5, "周期": "每周", "服务日": "周一至周五",
     "服务时段": "10:30-12:30", "每次时长(分钟)": 15, "优先级": "普通", "开始日期": "2026-01-05", "结束日期": "",
     "需求来源": "评估", "备注": "少盐"},
    {"身份证号": _ID["王秀英"], "姓名": "王秀英", "服务项目编码": "LC03", "数量": 1, "周期": "每周", "服务日": "周三",
     "服务时段": "09:00-11:00", "每次时长(分钟)": 90, "优先级": "普通", "开始日期": "2026-01-05", "结束日期": "2026-12-31",
     "需求来源": "申请", "备注": ""},
    {"身份证号": _ID["李德明"], "姓名": "李德明", "服务项目编码": "RH01", "数量": 2, "周期": "每周", "服务日": "1,4",
     "服务时段": "14:00-17:00", "每次时长(分钟)": 60, "优先级": "普通", "开始日期": "2026-01-05", "结束日期": "",
     "需求来源": "评估", "备注": ""},
    {"身份证号": _ID["张桂兰"], "姓名": "张桂兰", "服务项目编码": "PS03", "数量": 2, "周期": "每周", "服务日": "周二,周五",
     "服务时段": "", "每次时长(分钟)": "", "优先级": "紧急", "开始日期": "2026-01-05", "结束日期": "",
     "需求来源": "主动发现", "备注": "独居，需每周探访"},
    {"身份证号": _ID["陈志强"], "姓名": "陈志强", "服务项目编码": "RC01", "数量": 2, "周期": "每月", "服务日": "",
     "服务时段": "", "每次时长(分钟)": "", "优先级": "普通", "开始日期": "2026-01-05", "结束日期": "",
     "需求来源": "申请", "备注": "照护人喘息"},
    {"身份证号": _ID["刘思雨"], "姓名": "刘思雨", "服务项目编码": "CD01", "数量": 2, "周期": "每周", "服务日": "周二,周四",
     "服务时段": "16:30-18:30", "每次时长(分钟)": 90, "优先级": "普通", "开始日期": "2026-01-05", "结束日期": "2026-07-10",
     "需求来源": "评估", "备注": ""},
]

WORKERS = [
    {"所属组织": SAMPLE_ORGANISATION, "工号": "LL001", "姓名": "赵红梅", "性别": "女", "手机号": "13852901001",
     "出发站点(编码)": "HC-001", "出发点纬度": "", "出发点经度": "", "出行方式": "电动车",
     "可服务时间": "周一至周五 08:00-12:00,13:30-17:30", "每日最长工时(分钟)": 480, "每日最多服务次数": 8,
     "语言": "普通话,镇江话", "资质": ""},
    {"所属组织": SAMPLE_ORGANISATION, "工号": "LL002", "姓名": "孙建军", "性别": "男", "手机号": "13852901002",
     "出发站点(编码)": "", "出发点纬度": 32.1985, "出发点经度": 119.6702, "出行方式": "汽车",
     "可服务时间": "周一至周五 08:30-17:30", "每日最长工时(分钟)": 450, "每日最多服务次数": 6,
     "语言": "普通话", "资质": "康复治疗师:2027-06-30"},
    {"所属组织": SAMPLE_ORGANISATION, "工号": "LL003", "姓名": "周丽", "性别": "女", "手机号": "13852901003",
     "出发站点(编码)": "", "出发点纬度": 32.2102, "出发点经度": 119.6951, "出行方式": "电动车",
     "可服务时间": "周一,周三,周五 09:00-17:00; 周六 09:00-12:00", "每日最长工时(分钟)": 420, "每日最多服务次数": 8,
     "语言": "普通话", "资质": "心理咨询师:XL2023-0815:2028-12-31"},
]

SAMPLES: dict[str, list[dict]] = {"recipients": RECIPIENTS, "needs": NEEDS, "workers": WORKERS}
# Columns kept as text in the workbook, so Excel neither rounds ID numbers nor drops leading zeros.
TEXT_COLUMNS = {"身份证号", "联系电话", "照护人电话", "手机号", "所属社区(编码)", "工号", "所属组织", "开始日期", "结束日期",
                "认定有效期至"}


def sample_header(kind: str) -> list[str]:
    """The header of a sample: the kind's canonical column names that the sample uses, in the kind's order."""
    used = set(SAMPLES[kind][0])
    return [c.canonical for c in KINDS[kind].columns if c.canonical in used]


def sample_csv(kind: str) -> bytes:
    """A sample as CSV: UTF-8 with a BOM (so that Excel opens it in the right encoding), CRLF line ends."""
    header = sample_header(kind)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in SAMPLES[kind]:
        writer.writerow(["" if row[h] is None else row[h] for h in header])
    return buffer.getvalue().encode("utf-8-sig")


def sample_xlsx(kind: str) -> bytes:
    """A sample as an Excel workbook: bold header, text-formatted identifier columns, readable widths."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    header = sample_header(kind)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = {"recipients": "救助对象", "needs": "需求清单", "workers": "服务人员"}[kind]
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in SAMPLES[kind]:
        sheet.append([None if row[h] == "" else row[h] for h in header])
    for index, name in enumerate(header, start=1):
        letter = sheet.cell(row=1, column=index).column_letter
        sheet.column_dimensions[letter].width = max(10, min(40, 2 + 2 * max(len(str(r[name])) for r in SAMPLES[kind])))
        if name in TEXT_COLUMNS:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = "@"
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def write_samples(directory: Path) -> list[Path]:
    """Write every sample as .xlsx and .csv into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in SAMPLES:
        for suffix, build in (("xlsx", sample_xlsx), ("csv", sample_csv)):
            path = directory / f"{kind}.{suffix}"
            path.write_bytes(build(kind))
            paths.append(path)
    return paths
