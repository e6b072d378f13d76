"""The import page: choose what to import, upload, read the dry-run report, then commit."""

from __future__ import annotations

from flask import Blueprint, flash, render_template, request, send_file
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from servicehub.auth.access import current_principal, requires
from servicehub.auth.permissions import Permission
from servicehub.errors import DomainError, flatten_errors
from servicehub.imports import services
from servicehub.imports.forms import ImportCommitForm, ImportUploadForm

blp = Blueprint("imports_pages", __name__, template_folder="templates")

KIND_LABELS = {"recipients": _l("Recipients"), "needs": _l("Need lists"), "workers": _l("Workers")}
# The page lists at most this many problems; the API and `servicehub import` list all.
PAGE_PROBLEMS = 1000


def _page(upload: ImportUploadForm, status: int = 200, **context):
    principal = current_principal()
    return render_template(
        "imports/index.html", form=upload, commit_form=ImportCommitForm(), kind_labels=KIND_LABELS,
        samples=services.sample_files(), guide=services.column_guide(), kinds=services.kinds_for(principal),
        page_problems=PAGE_PROBLEMS, **context,
    ), status


def _upload_form() -> ImportUploadForm:
    form = ImportUploadForm()
    form.kind.choices = [(k.value, str(KIND_LABELS[k.value])) for k in services.kinds_for(current_principal())]
    return form


def _flash_error(exc: DomainError) -> None:
    details = [message for _, message in flatten_errors(exc.errors) if message != exc.message]
    flash(" ".join([exc.message, *details]), "error")


@blp.route("/imports", methods=["GET", "POST"])
@requires(Permission.IMPORTS_RUN)
def index():
    """The upload form; a POST checks the file (dry run) and shows the report."""
    form = _upload_form()
    if not form.validate_on_submit():
        return _page(form, 422 if request.method == "POST" else 200)
    upload = form.file.data
    try:
        report, token = services.preview_upload(current_principal(), form.kind.data, upload.stream, upload.filename or "")
    except DomainError as exc:
        _flash_error(exc)
        return _page(form, exc.status)
    return _page(form, 422 if report.problems else 200, report=report, token=token)


@blp.post("/imports/commit")
@requires(Permission.IMPORTS_RUN)
def commit():
    """Write the checked file: every row, or none."""
    form = _upload_form()
    commit_form = ImportCommitForm()
    if not commit_form.validate_on_submit():
        flash(_("The checked file is no longer kept. Upload it again."), "error")
        return _page(form, 400)
    try:
        report = services.commit_upload(current_principal(), commit_form.token.data)
    except DomainError as exc:
        _flash_error(exc)
        return _page(form, exc.status)
    if report.committed:
        flash(report.message, "success")
    return _page(form, 200 if report.committed else 422, report=report)


@blp.get("/imports/samples/<name>")
@requires(Permission.IMPORTS_RUN)
def sample(name: str):
    """Download a sample file to copy."""
    return send_file(services.sample_path(name), as_attachment=True, download_name=name)
