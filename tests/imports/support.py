"""Building spreadsheets in tests: workbooks (openpyxl, write-only for big ones) and CSV bytes."""

from __future__ import annotations

import csv
import io

from openpyxl import Workbook

from servicehub.imports.samples import sample_id_number


def xlsx(rows: list[list]) -> bytes:
    """A workbook whose first sheet holds `rows` (the first is the header)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Sheet1")
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_bytes(rows: list[list], encoding: str = "utf-8") -> bytes:
    """CSV text of `rows` in `encoding` (utf-8-sig for a BOM, gb18030 as Chinese Excel writes it)."""
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode(encoding)


RECIPIENT_HEADER = ["姓名", "身份证号", "救助类别", "救助子类", "所属社区(编码)", "住址", "纬度", "经度", "联系电话"]


def recipient_row(serial: int, *, name: str = "测试对象", area: str = "321191001", **changes) -> list:
    """A valid recipient row (a distinct ID number per serial) in RECIPIENT_HEADER order."""
    from datetime import date, timedelta

    born = date(1940, 1, 1) + timedelta(days=serial % 20000)  # with the sequence: distinct for 2 million serials
    row = {"姓名": name, "身份证号": sample_id_number(born, serial // 20000 % 100, serial % 2 == 0), "救助类别": "低保",
           "救助子类": "低保老人", "所属社区(编码)": area, "住址": f"测试路{serial}号", "纬度": 32.2, "经度": 119.68,
           "联系电话": "13812345678"}
    row.update(changes)
    return [row[h] for h in RECIPIENT_HEADER]


def recipient_rows(count: int, **changes) -> list[list]:
    """A header and `count` valid recipient rows with distinct ID numbers."""
    return [RECIPIENT_HEADER] + [recipient_row(n, **changes) for n in range(1, count + 1)]
