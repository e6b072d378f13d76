"""Reading uploaded spreadsheets. Pure module: bytes in, a header and numbered rows out.

Accepted: Excel workbooks (.xlsx, read in openpyxl's streaming read-only mode, first sheet) and CSV
text in UTF-8 (with or without BOM), UTF-16 with BOM (Excel's "Unicode text", tab-separated) or
GB18030 (what Chinese Excel writes as "CSV"), comma-, tab- or semicolon-separated. The format is
detected from the content, never only from the file name. Everything else is refused with a
`SpreadsheetError` that says what the file is and what to do.

Row numbers are the spreadsheet's own (the header is the first non-empty row, usually row 1);
empty rows are skipped but keep their numbers counting.
"""

from __future__ import annotations

import codecs
import csv
import io
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time

Cell = str | int | float | bool | date | datetime | time | None

ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls (and .doc, .ppt)
KNOWN_BINARY = {  # magic bytes -> what people call the file
    b"%PDF": "PDF",
    b"\x89PNG": "PNG image",
    b"\xff\xd8\xff": "JPEG image",
    b"GIF8": "GIF image",
    b"Rar!": "RAR archive",
    b"\x1f\x8b": "gzip archive",
    b"7z\xbc\xaf": "7-Zip archive",
}
SNIFF_BYTES = 64 * 1024


def N_(message: str) -> str:
    """Mark a message for translation; it is translated where it is shown."""
    return message


class SpreadsheetError(ValueError):
    """The upload is not a spreadsheet we can read; `message` % `params` says why (translatable)."""

    def __init__(self, message: str, **params):
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params


@dataclass(frozen=True)
class Row:
    """One non-empty data row: its spreadsheet row number and its cells (header order, padded)."""

    number: int
    cells: tuple[Cell, ...]


@dataclass
class Sheet:
    """A readable spreadsheet: its header, how many data rows it has, and a way to stream them again."""

    file_format: str  # "xlsx" or "csv"
    encoding: str | None  # for CSV
    header: list[str]
    header_row: int
    row_count: int
    _data: bytes | str = field(repr=False)  # the workbook's bytes, or a CSV file's text
    _delimiter: str = ","

    def rows(self) -> Iterator[Row]:
        """Stream the non-empty data rows (a fresh pass over the file each call)."""
        width = len(self.header)
        for number, cells in _iter_cells(self):
            cells = cells[:width]
            if number <= self.header_row or _is_empty(cells):
                continue
            yield Row(number, tuple(cells) + (None,) * (width - len(cells)))


def read_sheet(data: bytes, file_name: str = "", *, max_rows: int | None = None) -> Sheet:
    """Detect the format of `data`, read the header and count the data rows (refusing more than `max_rows`)."""
    if not data:
        raise SpreadsheetError(N_("The file is empty."))
    file_format, encoding, text_data, delimiter = _detect(data, file_name)
    sheet = Sheet(file_format, encoding, [], 0, 0, text_data, delimiter)
    header_row, header, count = 0, None, 0
    for number, cells in _iter_cells(sheet):
        if header is None:
            if not _is_empty(cells):
                header_row, header = number, [_header_text(c) for c in cells]
                while not header[-1]:
                    header.pop()
            continue
        if _is_empty(cells[: len(header)]):  # empty, or only notes beside the table
            continue
        count += 1
        if max_rows is not None and count > max_rows:
            raise SpreadsheetError(
                N_("The file has more than %(limit)d data rows, the most one import takes. "
                   "Split it into smaller files and import them one after another."),
                limit=max_rows,
            )
    if header is None:
        raise SpreadsheetError(N_("The file has no rows: neither a header nor data."))
    if count == 0:
        raise SpreadsheetError(N_("The file has a header row but no data rows."))
    sheet.header, sheet.header_row, sheet.row_count = header, header_row, count
    return sheet


# --- detection ------------------------------------------------------------------------------


def _detect(data: bytes, file_name: str) -> tuple[str, str | None, bytes | str, str]:
    """(format, encoding, data to parse, CSV delimiter) or SpreadsheetError."""
    named = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    if data.startswith(ZIP_MAGIC):
        return "xlsx", None, _check_workbook(data), ","
    if data.startswith(OLE2_MAGIC):
        raise SpreadsheetError(
            N_("This is an old-style Excel file (.xls). Open it in Excel or WPS and save it as .xlsx "
               "(Excel workbook) or CSV, then upload that.")
        )
    for magic, kind in KNOWN_BINARY.items():
        if data.startswith(magic):
            raise SpreadsheetError(N_("This is a %(kind)s, not a spreadsheet. Upload an .xlsx or CSV file."), kind=kind)
    if named == "xlsx":
        raise SpreadsheetError(N_("The file is named .xlsx but is not an Excel workbook (it may be damaged)."))
    text, encoding = _decode(data)
    return "csv", encoding, text, _delimiter(text)


def _check_workbook(data: bytes) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            mimetype = archive.read("mimetype").decode("ascii", "replace") if "mimetype" in names else ""
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise SpreadsheetError(N_("The file looks like a ZIP archive but cannot be opened (it may be damaged).")) from exc
    if "xl/workbook.xml" in names:
        return data
    if "opendocument.spreadsheet" in mimetype:
        raise SpreadsheetError(N_("This is an OpenDocument spreadsheet (.ods). Save it as .xlsx or CSV, then upload that."))
    if "word/document.xml" in names:
        raise SpreadsheetError(N_("This is a Word document, not a spreadsheet. Upload an .xlsx or CSV file."))
    raise SpreadsheetError(N_("This is a ZIP archive, not an Excel workbook. Upload an .xlsx or CSV file."))


def _decode(data: bytes) -> tuple[str, str]:
    """The text of a CSV file and its encoding: UTF-8 (BOM or not), UTF-16 with BOM, else GB18030."""
    if data.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    else:
        if b"\x00" in data[:SNIFF_BYTES]:
            raise SpreadsheetError(N_("The file is not a spreadsheet: it holds binary data. Upload an .xlsx or CSV file."))
        candidates = ["utf-8", "gb18030"]
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _looks_binary(text):
            break
        return text, encoding
    raise SpreadsheetError(
        N_("The file is not an .xlsx workbook, and not CSV text in UTF-8 or GB18030. "
           "Save it from Excel or WPS as .xlsx or as CSV, then upload that.")
    )


def _looks_binary(text: str) -> bool:
    sample = text[:SNIFF_BYTES]
    controls = sum(1 for ch in sample if ch < " " and ch not in "\t\r\n")
    return controls > max(2, len(sample) // 100)


def _delimiter(text: str) -> str:
    """Comma unless the first line is clearly tab- or semicolon-separated."""
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=counts.get)
    return best if counts[best] > counts[","] else ","


# --- reading --------------------------------------------------------------------------------


def _iter_cells(sheet: Sheet) -> Iterator[tuple[int, list[Cell]]]:
    if sheet.file_format == "xlsx":
        yield from _xlsx_cells(sheet._data)
    else:
        yield from _csv_cells(sheet._data, sheet._delimiter)


def _xlsx_cells(data: bytes) -> Iterator[tuple[int, list[Cell]]]:
    from openpyxl import load_workbook

    try:
        with _quiet():
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a damaged workbook
        raise SpreadsheetError(N_("The Excel workbook cannot be read (it may be damaged or protected).")) from exc
    try:
        worksheet = next((ws for ws in workbook.worksheets if ws.sheet_state == "visible"), None)
        if worksheet is None:
            raise SpreadsheetError(N_("The Excel workbook has no visible worksheet."))
        worksheet.reset_dimensions()  # a wrong <dimension> (A1:XFD1048576) would pad every row
        rows = worksheet.iter_rows(values_only=True)
        number = 0
        while True:
            try:
                with _quiet():
                    values = next(rows)
            except StopIteration:
                return
            except Exception as exc:
                raise SpreadsheetError(N_("The Excel workbook cannot be read (it may be damaged).")) from exc
            number += 1
            yield number, list(values)
    finally:
        workbook.close()


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence openpyxl's warnings about styles and extensions some producers (WPS, exports) write."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _csv_cells(text: str, delimiter: str) -> Iterator[tuple[int, list[Cell]]]:
    # A quoted cell may span lines: a record is one spreadsheet row, as Excel counts them.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        yield from ((number, list(values)) for number, values in enumerate(reader, start=1))
    except csv.Error as exc:
        raise SpreadsheetError(N_("The CSV file is malformed near line %(line)d."), line=reader.line_num) from exc


def _is_empty(cells: list[Cell] | tuple[Cell, ...]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _header_text(cell: Cell) -> str:
    return "" if cell is None else str(cell).strip()
