"""Import endpoint: POST /api/v1/imports (multipart: file, kind, dry_run)."""

from __future__ import annotations

from flask import current_app, json
from flask.views import MethodView
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict

from servicehub.auth.access import current_principal, requires
from servicehub.auth.permissions import Permission
from servicehub.errors import PROBLEM_MIMETYPE
from servicehub.imports import services
from servicehub.imports.schemas import ImportRejectedSchema, ImportReportSchema, ImportUploadSchema


class MultipartParser(FlaskParser):
    """Reads the "files" location as the whole multipart form (the file and the plain fields), so that one
    schema describes the request and the OpenAPI document shows one multipart/form-data body."""

    def load_files(self, req, schema):
        """Files and form fields together."""
        return self._makeproxy(CombinedMultiDict([req.files, req.form]), schema)


blp = Blueprint(
    "imports",
    __name__,
    url_prefix="/api/v1",
    description="Spreadsheet imports of recipients, needs and workers: a dry run reports every bad row "
    "(row, column, reason); a commit writes all rows or none. Sample files: /imports/samples/<name>.",
)
blp.ARGUMENTS_PARSER = MultipartParser()


def rejected(report: services.ImportReport):
    """422 problem+json with field-level errors ({"rows": {row: {column: [reason]}}}) and the whole report."""
    rows: dict[str, dict[str, list[str]]] = {}
    for p in report.problems:
        rows.setdefault(str(p.row), {}).setdefault(p.column or p.field or "row", []).append(p.reason)
    body = {"code": "validation_error", "status": 422, "message": report.message, "errors": {"rows": rows},
            "report": ImportReportSchema().dump(report)}
    return current_app.response_class(json.dumps(body), status=422, mimetype=PROBLEM_MIMETYPE)


@blp.route("/imports")
class Imports(MethodView):
    """The import collection: one POST per spreadsheet."""

    @requires(Permission.IMPORTS_RUN)
    @blp.arguments(ImportUploadSchema, location="files")
    @blp.response(200, ImportReportSchema, description="Dry run: every row is valid; nothing was written")
    @blp.alt_response(201, schema=ImportReportSchema, description="Committed: every row was written")
    @blp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
    @blp.alt_response(422, schema=ImportRejectedSchema, description="Bad rows or an unreadable file; nothing written",
                      content_type="application/problem+json")
    def post(self, args):
        """Import a spreadsheet of recipients, needs or workers (a dry run unless dry_run=false).

        Recipients and needs need the recipients.manage permission as well, workers workers.manage;
        a town manager imports only into their town, a provider only its own workers.
        """
        upload = args["file"]
        report = services.run_import(
            current_principal(), args["kind"], upload.stream, upload.filename or "", dry_run=args["dry_run"]
        )
        if report.problems:
            return rejected(report)
        return report, 201 if report.committed else 200
