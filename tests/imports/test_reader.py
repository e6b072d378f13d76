"""The reader: .xlsx and CSV (UTF-8, UTF-8 with BOM, GB18030, UTF-16) by content; everything else refused."""

import io
import zipfile
from datetime import datetime

import pytest

from servicehub.imports.reader import SpreadsheetError, read_sheet
from tests.imports.support import csv_bytes, xlsx

ROWS = [["姓名", "身份证号", "纬度"], ["王秀英", "32119119491231002X", 32.2], ["李德明", "321191195007020210", 32.15]]


def rows_of(sheet):
    return [(row.number, list(row.cells)) for row in sheet.rows()]


def test_xlsx_gives_header_numbered_rows_and_typed_cells():
    sheet = read_sheet(xlsx(ROWS), "名单.xlsx")
    assert (sheet.file_format, sheet.encoding) == ("xlsx", None)
    assert sheet.header == ["姓名", "身份证号", "纬度"] and sheet.header_row == 1 and sheet.row_count == 2
    assert rows_of(sheet) == [(2, ["王秀英", "32119119491231002X", 32.2]), (3, ["李德明", "321191195007020210", 32.15])]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
def test_csv_in_every_encoding_excel_writes(encoding):
    sheet = read_sheet(csv_bytes(ROWS, encoding), "名单.csv")
    assert sheet.file_format == "csv" and sheet.encoding == encoding
    assert sheet.header == ["姓名", "身份证号", "纬度"]
    assert rows_of(sheet)[0] == (2, ["王秀英", "32119119491231002X", "32.2"])


def test_gb18030_is_the_fallback_and_reads_rare_characters():
    rows = [["姓名", "住址"], ["䶮䶮", "镇江新区丁卯街道"]]
    data = csv_bytes(rows, "gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert rows_of(read_sheet(data, "x.csv")) == [(2, ["䶮䶮", "镇江新区丁卯街道"])]


def test_format_is_detected_by_content_not_by_name():
    assert read_sheet(xlsx(ROWS), "export.csv").file_format == "xlsx"
    assert read_sheet(csv_bytes(ROWS), "export.dat").file_format == "csv"
    with pytest.raises(SpreadsheetError, match="named .xlsx but is not an Excel workbook"):
        read_sheet(b"\x80\x81 not a workbook", "名单.xlsx")


def test_tab_separated_text_is_read():
    sheet = read_sheet("姓名\t身份证号\n王秀英\t32119119491231002X\n".encode(), "x.txt")
    assert sheet.header == ["姓名", "身份证号"] and rows_of(sheet) == [(2, ["王秀英", "32119119491231002X"])]


def test_empty_rows_are_skipped_but_keep_their_numbers():
    rows = [["姓名", "纬度"], ["甲", 1], [None, None], ["", "  "], ["乙", 2]]
    sheet = read_sheet(xlsx(rows))
    assert sheet.row_count == 2 and [r.number for r in sheet.rows()] == [2, 5]
    sheet = read_sheet(csv_bytes([["姓名"], ["甲"], [""], ["乙"]]))
    assert [r.number for r in sheet.rows()] == [2, 4]


def test_short_rows_are_padded_and_long_rows_cut_to_the_header():
    sheet = read_sheet(csv_bytes([["a", "b", "c"], ["1"], ["1", "2", "3", "4"]]))
    assert [r.cells for r in sheet.rows()] == [("1", None, None), ("1", "2", "3")]


def test_a_header_below_blank_rows_counts_from_its_own_row():
    sheet = read_sheet(xlsx([[None], ["姓名"], ["甲"]]))
    assert sheet.header_row == 2 and [r.number for r in sheet.rows()] == [3]


def test_dates_and_numbers_keep_their_types_in_xlsx():
    sheet = read_sheet(xlsx([["开始日期", "数量"], [datetime(2026, 1, 5), 3]]))
    assert list(sheet.rows())[0].cells == (datetime(2026, 1, 5), 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old-style Excel file"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG"),
        (bytes(range(256)) * 4, "binary data"),
        (b"name,id\r\n\x80\xff,1\r\n" * 50, "not an .xlsx workbook, and not CSV text"),
    ],
)
def test_what_is_not_a_spreadsheet_is_refused_with_a_clear_message(data, message):
    with pytest.raises(SpreadsheetError, match=message):
        read_sheet(data, "upload.xlsx" if message == "old-style Excel file" else "upload")


def test_zip_archives_that_are_not_workbooks_are_named():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    with pytest.raises(SpreadsheetError, match="Word document"):
        read_sheet(buffer.getvalue())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(SpreadsheetError, match="ZIP archive, not an Excel workbook"):
        read_sheet(buffer.getvalue())


def test_a_damaged_workbook_is_refused():
    data = xlsx(ROWS)
    with pytest.raises(SpreadsheetError, match="cannot be (read|opened)"):
        read_sheet(data[: len(data) // 2], "x.xlsx")


@pytest.mark.parametrize("rows", [[], [[None, None]], [["", ""], ["", ""]]])
def test_a_file_without_rows_is_refused(rows):
    with pytest.raises(SpreadsheetError, match="no rows"):
        read_sheet(xlsx(rows) if rows else csv_bytes([[" "]]))


@pytest.mark.parametrize("build", [xlsx, csv_bytes])
def test_a_header_without_data_is_refused(build):
    with pytest.raises(SpreadsheetError, match="header row but no data rows"):
        read_sheet(build([["姓名", "身份证号"]]))


def test_more_rows_than_the_limit_are_refused_before_any_row_is_used():
    data = csv_bytes([["姓名"]] + [[f"人{n}"] for n in range(101)])
    assert read_sheet(data, max_rows=101).row_count == 101
    with pytest.raises(SpreadsheetError, match="more than 100 data rows") as caught:
        read_sheet(data, max_rows=100)
    assert caught.value.params == {"limit": 100}


def test_notes_beside_the_table_are_not_rows():
    sheet = read_sheet(xlsx([["姓名", "纬度", None, None], ["甲", 1, None, "备注：以下为空"], [None, None, None, "合计"]]))
    assert sheet.header == ["姓名", "纬度"] and sheet.row_count == 1
    assert [(r.number, r.cells) for r in sheet.rows()] == [(2, ("甲", 1))]
