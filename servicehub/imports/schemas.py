"""Import schemas: the upload (a multipart form: file, kind, dry_run) and the report sent back."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import fields, validate, validates
from werkzeug.datastructures import FileStorage

from servicehub.errors import ErrorSchema
from servicehub.imports.services import ImportKind

KINDS = [k.value for k in ImportKind]


class ImportUploadSchema(ma.Schema):
    """multipart/form-data: the spreadsheet, what it holds, and whether to write it."""

    file = Upload(
        required=True,
        metadata={"description": "An .xlsx workbook or a CSV file (UTF-8 with or without BOM, or GB18030) "
                                 "with a header row of Chinese column names or API field names"},
    )
    kind = fields.String(required=True, validate=validate.OneOf(KINDS),
                         metadata={"description": "recipients (救助对象), needs (需求清单) or workers (服务人员)"})
    dry_run = fields.Boolean(load_default=True,
                             metadata={"description": "Only check (default); false writes all rows, or none if any is bad"})

    @validates("file")
    def _is_a_file(self, value, **kwargs) -> None:
        if not isinstance(value, FileStorage):
            raise ma.ValidationError("Send the spreadsheet as a file part of a multipart/form-data request.")


class ImportProblemSchema(ma.Schema):
    """One problem of one row."""

    row = fields.Integer(metadata={"description": "Spreadsheet row number (the header is row 1)"})
    column = fields.String(metadata={"description": "The column's header as written in the file"})
    field = fields.String(allow_none=True, metadata={"description": "The API field behind the column"})
    reason = fields.String()
    code = fields.String(metadata={"enum": ["invalid", "duplicate", "not_found", "forbidden"]})
    existing_id = fields.Integer(allow_none=True,
                                 metadata={"description": "A duplicate's registered record, if you may see it"})


class ImportColumnSchema(ma.Schema):
    """A column of the file and the API field it was read as."""

    column = fields.String()
    field = fields.String()


class ImportReportSchema(ma.Schema):
    """What an import found and did."""

    kind = fields.String(metadata={"enum": KINDS})
    file_name = fields.String()
    file_format = fields.String(metadata={"enum": ["xlsx", "csv"]})
    encoding = fields.String(allow_none=True, metadata={"description": "CSV only: utf-8, utf-8-sig, gb18030 …"})
    dry_run = fields.Boolean()
    committed = fields.Boolean(metadata={"description": "Whether the rows were written (all of them)"})
    message = fields.String()
    rows = fields.Integer(metadata={"description": "Data rows (empty rows are skipped)"})
    valid = fields.Integer()
    invalid = fields.Integer()
    duplicates = fields.Integer()
    created = fields.Integer()
    columns = fields.List(fields.Nested(ImportColumnSchema))
    ignored_columns = fields.List(fields.String(), metadata={"description": "Columns not used by this kind"})
    problems = fields.List(fields.Nested(ImportProblemSchema))


class ImportRejectedSchema(ErrorSchema):
    """422: rows are bad; nothing was written. `errors` is {"rows": {row: {column: [reason]}}}."""

    report = fields.Nested(ImportReportSchema)
