"""Spreadsheet imports of recipients, needs and workers: read, validate every row, then all or nothing.

Each row is validated exactly as the API validates one record — the marshmallow create schema, then
the registry's own non-committing use case (`add_recipient`, `add_need`, `add_worker`) with the
caller's Principal, so scoping (a town manager: their town; a provider: its own workers) and every
business rule are the registry's. Each row runs in a SAVEPOINT so that a bad row does not poison the
others; every problem is collected with its spreadsheet row, column and reason. A dry run (the
default) and a commit with any bad row roll everything back; a clean commit is one transaction.

Duplicates are never merged: a recipient whose ID number is registered already, or who appears twice
in the file, is reported (with the existing recipient's id if the caller may see that recipient).
"""

from __future__ import annotations

import base64
import enum
import json
import re
import secrets
import time as clock
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import BinaryIO

import marshmallow as ma
from flask import current_app
from flask_babel import gettext
from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError

from servicehub import crypto
from servicehub.auth.audit import record_event
from servicehub.auth.permissions import Permission, Principal
from servicehub.catalog import services as catalog_services
from servicehub.config import SEED_DIR
from servicehub.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    flatten_errors,
)
from servicehub.extensions import db
from servicehub.imports import columns as cols
from servicehub.imports.reader import Sheet, SpreadsheetError, read_sheet
from servicehub.registry import schemas as registry_schemas
from servicehub.registry import scope
from servicehub.registry import services as registry
from servicehub.registry.models import Recipient

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_ROWS = 50_000
DEFAULT_KEEP_MINUTES = 60
SAMPLES_DIR = SEED_DIR / "samples"
SAMPLE_FORMATS = ("xlsx", "csv")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")


class ImportKind(enum.StrEnum):
    """What a spreadsheet holds."""

    RECIPIENTS = "recipients"  # 救助对象
    NEEDS = "needs"  # 需求清单
    WORKERS = "workers"  # 服务人员


# Beyond IMPORTS_RUN (checked on the route), what each kind needs.
KIND_PERMISSIONS = {
    ImportKind.RECIPIENTS: Permission.RECIPIENTS_MANAGE,
    ImportKind.NEEDS: Permission.RECIPIENTS_MANAGE,
    ImportKind.WORKERS: Permission.WORKERS_MANAGE,
}


class UploadTooLarge(DomainError):
    """The upload is over the size an import takes."""

    status = 413
    code = "request_entity_too_large"


@dataclass
class RowProblem:
    """One problem of one row: spreadsheet row (header = row 1), the column as written, the API field, why."""

    row: int
    column: str
    field: str | None
    reason: str
    code: str = "invalid"  # invalid | duplicate | not_found | forbidden
    existing_id: int | None = None


@dataclass
class ImportReport:
    """What an import found and did."""

    kind: str
    file_name: str
    file_format: str
    encoding: str | None
    dry_run: bool
    rows: int = 0
    committed: bool = False
    created: int = 0
    columns: list[dict] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    _bad_rows: set[int] = field(default_factory=set, repr=False)
    _duplicate_rows: set[int] = field(default_factory=set, repr=False)

    @property
    def invalid(self) -> int:
        """Rows with at least one problem."""
        return len(self._bad_rows)

    @property
    def valid(self) -> int:
        """Rows without problems."""
        return self.rows - self.invalid

    @property
    def duplicates(self) -> int:
        """Rows that repeat a registered record or another row of the file."""
        return len(self._duplicate_rows)

    @property
    def message(self) -> str:
        """One sentence for people: what happened."""
        if self.problems:
            return gettext(
                "%(bad)d of %(rows)d rows have problems (%(duplicates)d duplicates); nothing was written. "
                "Correct the rows listed and upload the file again.",
                bad=self.invalid, rows=self.rows, duplicates=self.duplicates,
            )
        if self.committed:
            return gettext("Imported all %(rows)d rows.", rows=self.created)
        return gettext("All %(rows)d rows are valid; nothing was written yet (dry run).", rows=self.rows)

    def is_bad(self, row: int) -> bool:
        """Whether `row` has a problem."""
        return row in self._bad_rows

    def is_duplicate(self, row: int) -> bool:
        """Whether `row` was reported as a duplicate."""
        return row in self._duplicate_rows

    def add(self, problem: RowProblem) -> None:
        """Record a problem of a row."""
        self.problems.append(problem)
        self._bad_rows.add(problem.row)
        if problem.code == "duplicate":
            self._duplicate_rows.add(problem.row)


# --- the use cases --------------------------------------------------------------------------


def run_import(principal: Principal, kind: str, source: BinaryIO, file_name: str, *, dry_run: bool = True) -> ImportReport:
    """Validate every row of an uploaded spreadsheet; unless a dry run, write all rows in one transaction or none."""
    kind = _allowed_kind(principal, kind)
    return _run(principal, kind, _read_upload(source), file_name, dry_run=dry_run)


def preview_upload(principal: Principal, kind: str, source: BinaryIO, file_name: str) -> tuple[ImportReport, str | None]:
    """A dry run for the import page; a clean file is kept (encrypted, for a limited time) under a token to commit."""
    kind = _allowed_kind(principal, kind)
    data = _read_upload(source)
    report = _run(principal, kind, data, file_name, dry_run=True)
    token = None if report.problems else _keep_upload(principal, kind, data, file_name)
    return report, token


def commit_upload(principal: Principal, token: str) -> ImportReport:
    """Commit a file kept by `preview_upload` (only its uploader may, while it is kept)."""
    meta, data = _kept_upload(principal, token)
    kind = _allowed_kind(principal, meta["kind"])
    report = _run(principal, kind, data, meta["file_name"], dry_run=False)
    if report.committed:
        _discard_upload(token)
    return report


def kinds_for(principal: Principal) -> list[ImportKind]:
    """The kinds of import the caller may run."""
    return [k for k in ImportKind if principal.can(Permission.IMPORTS_RUN) and principal.can(KIND_PERMISSIONS[k])]


def column_guide() -> dict[str, list[dict]]:
    """For each kind, its columns: the header the samples use, other accepted headers, the API field, required."""
    guide = {}
    for kind in ImportKind:
        spec = cols.KINDS[kind]
        required = {name for group in spec.required for name in group}
        guide[kind.value] = [
            {"header": c.canonical, "aliases": list(c.headers[1:]), "field": c.field, "required": c.field in required}
            for c in spec.columns
        ]
    return guide


def sample_files() -> list[dict]:
    """The sample files a manager can copy: kind, format and file name."""
    return [
        {"kind": kind.value, "format": fmt, "name": f"{kind.value}.{fmt}"}
        for kind in ImportKind
        for fmt in SAMPLE_FORMATS
        if (SAMPLES_DIR / f"{kind.value}.{fmt}").exists()
    ]


def sample_path(name: str) -> Path:
    """The path of a sample file by its name (recipients.xlsx …); NotFound for anything else."""
    if name not in {s["name"] for s in sample_files()}:
        raise NotFound(gettext("No sample file %(name)s.", name=name))
    return SAMPLES_DIR / name


# --- limits and reading ---------------------------------------------------------------------


def limits() -> tuple[int, int]:
    """(largest upload in bytes, most data rows): SERVICEHUB_IMPORT_MAX_BYTES, SERVICEHUB_IMPORT_MAX_ROWS."""
    config = current_app.config
    return (
        int(config.get("SERVICEHUB_IMPORT_MAX_BYTES") or DEFAULT_MAX_BYTES),
        int(config.get("SERVICEHUB_IMPORT_MAX_ROWS") or DEFAULT_MAX_ROWS),
    )


def _allowed_kind(principal: Principal, kind: str) -> ImportKind:
    try:
        kind = ImportKind(kind)
    except ValueError:
        raise ValidationFailed(
            gettext("Unknown kind of import %(kind)s.", kind=kind), {"kind": [", ".join(ImportKind)]}
        ) from None
    needed = KIND_PERMISSIONS[kind]
    if not (principal.can(Permission.IMPORTS_RUN) and principal.can(needed)):
        raise PermissionDenied(gettext("Your role may not import %(kind)s (needs %(permission)s).",
                                       kind=kind.value, permission=needed.value))
    return kind


def _read_upload(source: BinaryIO) -> bytes:
    max_bytes, _ = limits()
    data = source.read(max_bytes + 1)
    if len(data) > max_bytes:
        mb = max_bytes / (1024 * 1024)
        raise UploadTooLarge(
            gettext("The file is larger than %(limit)s MB, the most one import takes. "
                    "Split it into smaller files; nothing was written.", limit=f"{mb:g}"),
            {"file": [gettext("Larger than %(limit)s MB.", limit=f"{mb:g}")]},
        )
    return data


def _sheet(data: bytes, file_name: str) -> Sheet:
    _, max_rows = limits()
    try:
        return read_sheet(data, file_name, max_rows=max_rows)
    except SpreadsheetError as exc:
        raise _unreadable(exc) from exc


def _unreadable(exc: SpreadsheetError) -> ValidationFailed:
    reason = gettext(exc.message, **exc.params)
    return ValidationFailed(reason, {"file": [reason]})


def _column_map(kind: ImportKind, sheet: Sheet) -> cols.ColumnMap:
    try:
        return cols.map_header(cols.KINDS[kind], sheet.header)
    except cols.HeaderError as exc:
        reasons = [gettext(p.message, **p.params) for p in exc.problems]
        raise ValidationFailed(
            gettext("The header row (row %(row)d) cannot be used: %(reasons)s Nothing was written.",
                    row=sheet.header_row, reasons=" ".join(reasons)),
            {"file": reasons},
        ) from exc


# --- running an import ----------------------------------------------------------------------


@dataclass
class _Run:
    """One import in progress: who, what, and what was seen so far in the file."""

    principal: Principal
    kind: ImportKind
    columns: cols.ColumnMap
    lookups: cols.Lookups
    report: ImportReport
    schema: ma.Schema
    seen: dict[object, int] = field(default_factory=dict)  # natural key -> first row with it
    recipients: dict[str, tuple[int, str] | None] = field(default_factory=dict)  # ID hash -> (id, name)

    def problem(self, row: int, field_name: str | None, reason: str, code: str = "invalid", **extra) -> None:
        """Report a problem of `row` at the column behind `field_name`."""
        self.report.add(RowProblem(row, self.columns.header_for(field_name), field_name, reason, code, **extra))

    def problems_from(self, row: int, errors: dict, message: str, code: str) -> None:
        """Report marshmallow- or service-style `{field: [reason]}` errors (or the message if none)."""
        pairs = flatten_errors(errors) or [("", message)]
        for path, reason in pairs:
            name = path.split(".")[0] if path and path != "_schema" else None
            self.problem(row, name, reason, code)


def _run(principal: Principal, kind: ImportKind, data: bytes, file_name: str, *, dry_run: bool) -> ImportReport:
    file_name = re.split(r"[\\/]", file_name)[-1][:200]  # a browser may send a path; it is shown and audited
    sheet = _sheet(data, file_name)
    column_map = _column_map(kind, sheet)
    report = ImportReport(kind.value, file_name, sheet.file_format, sheet.encoding, dry_run, rows=sheet.row_count,
                          columns=[{"column": w, "field": c.field} for _, c, w in column_map.positions],
                          ignored_columns=column_map.ignored)
    run = _Run(principal, kind, column_map, _lookups(principal, kind), report, CREATE_SCHEMAS[kind]())
    handle = ROW_HANDLERS[kind]
    try:
        # The import's audit event is written first, and only kept if the import commits. Writing first
        # also matters on SQLite: pysqlite opens a transaction only at the first write, so a first
        # SAVEPOINT would otherwise *be* the transaction, and releasing it would commit the row.
        record_event(db.session, "import", kind.value, file_name=file_name, rows=sheet.row_count,
                     file_format=sheet.file_format)
        db.session.flush()
        for row in sheet.rows():
            handle(run, row)
        if dry_run or report.problems:
            db.session.rollback()
        else:
            db.session.commit()
            report.committed, report.created = True, report.rows
    except SpreadsheetError as exc:  # found only on the second pass over the file
        db.session.rollback()
        raise _unreadable(exc) from exc
    except BaseException:
        db.session.rollback()
        raise
    return report


def _validate_and_add(run: _Run, row: int, payload: dict, failed: set[str], add, registered=None) -> None:
    """The schema, then (if the row is readable) the registry's use case in a SAVEPOINT, kept only if all is well.

    `registered()`, if given, reports the row as a duplicate of a registered record (True if it is one);
    it runs for rows the registry does not get to see and when the registry refuses a duplicate.
    """
    try:
        data = run.schema.load(payload, partial=tuple(failed))
    except ma.ValidationError as exc:
        run.problems_from(row, exc.normalized_messages(), str(exc), "invalid")
        data = None
    if data is None or run.report.is_bad(row):
        # The registry's rules are checked once the cells are readable (no misleading follow-on errors);
        # a duplicate is reported all the same.
        if registered:
            registered()
        return
    nested = db.session.begin_nested()
    try:
        add(run.principal, data)
    except ValidationFailed as exc:
        run.problems_from(row, exc.errors, exc.message, "invalid")
    except PermissionDenied as exc:
        run.problem(row, SCOPE_FIELDS[run.kind], exc.message, "forbidden")
    except NotFound as exc:
        run.problems_from(row, exc.errors or {SCOPE_FIELDS[run.kind]: [exc.message]}, exc.message, "not_found")
    except Conflict as exc:
        if not (registered and registered()):
            for name in list(exc.errors) or [None]:
                run.problem(row, name, exc.message, "duplicate")
    except (IntegrityError, DataError) as exc:
        run.problem(row, None, gettext("The database refused the row: %(reason)s", reason=str(exc.orig).strip()))
    if run.report.is_bad(row):
        nested.rollback()  # also after a failed flush, which leaves the savepoint inactive
    else:
        nested.commit()


def _convert(run: _Run, row) -> tuple[dict, set[str]]:
    payload, problems = run.columns.convert(row.cells, run.lookups)
    for p in problems:
        run.report.add(RowProblem(row.number, p.column, p.field, gettext(p.message, **p.params)))
    failed = {p.field for p in problems if p.field}
    return payload, failed


def _recipient_row(run: _Run, row) -> None:
    payload, failed = _convert(run, row)
    id_number = payload.get("id_number")
    registered = None
    if isinstance(id_number, str) and re.fullmatch(r"[0-9]{17}[0-9X]", id_number):
        id_hash = registry.id_number_lookup_hash(id_number)
        first = run.seen.setdefault(id_hash, row.number)
        if first != row.number:
            run.problem(row.number, "id_number", gettext("The same ID number is on row %(row)d.", row=first), "duplicate")
        else:
            registered = partial(_report_registered, run, row.number, id_hash)
    _validate_and_add(run, row.number, payload, failed, registry.add_recipient, registered)


def _report_registered(run: _Run, row: int, id_hash: str) -> bool:
    """Report the row as a duplicate if its ID number is registered (naming the record if the caller may see it)."""
    recipient_id = db.session.scalar(select(Recipient.id).where(Recipient.id_number_hash == id_hash))
    if recipient_id is None:
        return False
    visible = db.session.scalar(
        select(Recipient.id).where(Recipient.id == recipient_id, scope.recipients_visible(run.principal))
    )
    if visible:
        reason = gettext("Already registered as recipient %(id)d; not imported again.", id=recipient_id)
        run.problem(row, "id_number", reason, "duplicate", existing_id=recipient_id)
    else:
        run.problem(row, "id_number", gettext("Already registered (outside what you manage); not imported again."),
                    "duplicate")
    return True


def _need_row(run: _Run, row) -> None:
    payload, failed = _convert(run, row)
    id_number = payload.pop("id_number", None)
    name = payload.pop("recipient_name", None)
    if "id_number" in failed:
        failed.add("recipient_id")
    if id_number:
        found = _recipient_by_id_number(run, id_number)
        if found is None:
            run.problem(row.number, "id_number",
                        gettext("No registered recipient with this ID number among those you manage. "
                                "Import the recipient first."), "not_found")
            failed.add("recipient_id")
        else:
            recipient_id, registered_name = found
            if payload.get("recipient_id") not in (None, recipient_id):
                run.problem(row.number, "recipient_id",
                            gettext("The ID number belongs to recipient %(id)d, not %(given)s.",
                                    id=recipient_id, given=payload["recipient_id"]))
            payload["recipient_id"] = recipient_id
            if name and name != registered_name:
                run.problem(row.number, "recipient_name",
                            gettext("The name differs from the registered recipient's (%(name)s); check the ID number.",
                                    name=registered_name))
    _validate_and_add(run, row.number, payload, failed, registry.add_need)


def _worker_row(run: _Run, row) -> None:
    payload, failed = _convert(run, row)
    organisation_id = payload.get("organisation_id") or run.principal.organisation_id
    employee_no = payload.get("employee_no")
    if organisation_id and employee_no:
        first = run.seen.setdefault((organisation_id, employee_no), row.number)
        if first != row.number:
            run.problem(row.number, "employee_no",
                        gettext("The same employee number is on row %(row)d.", row=first), "duplicate")
    _validate_and_add(run, row.number, payload, failed, registry.add_worker)


CREATE_SCHEMAS = {ImportKind.RECIPIENTS: registry_schemas.RecipientCreateSchema,
                  ImportKind.NEEDS: registry_schemas.NeedCreateSchema,
                  ImportKind.WORKERS: registry_schemas.WorkerCreateSchema}
ROW_HANDLERS = {ImportKind.RECIPIENTS: _recipient_row, ImportKind.NEEDS: _need_row, ImportKind.WORKERS: _worker_row}
# The column a refusal by scope points at: a recipient's area, a need's recipient, a worker's organisation.
SCOPE_FIELDS = {ImportKind.RECIPIENTS: "area", ImportKind.NEEDS: "recipient_id", ImportKind.WORKERS: "organisation_id"}


def _recipient_by_id_number(run: _Run, id_number: str) -> tuple[int, str] | None:
    """(id, name) of the recipient with this ID number whom the caller may see, or None."""
    id_hash = registry.id_number_lookup_hash(id_number)
    if id_hash not in run.recipients:
        found = db.session.execute(
            select(Recipient.id, Recipient.name).where(
                Recipient.id_number_hash == id_hash, scope.recipients_visible(run.principal)
            )
        ).first()
        run.recipients[id_hash] = tuple(found) if found else None
    return run.recipients[id_hash]


def _lookups(principal: Principal, kind: ImportKind) -> cols.Lookups:
    """The names cells may use for this kind, from the catalogue and the registry."""
    tables: dict[str, dict] = {}
    labels: dict[str, list[str]] = {}
    subclasses: dict[str, dict[str, str]] = {}

    def table(name: str, entries: list[tuple[object, list[str], str]]) -> None:
        """Register (value, names it goes by, label to suggest) entries as lookup table `name`."""
        tables[name] = {cols.key(alias): value for value, aliases, _ in entries for alias in aliases if alias}
        labels[name] = [label for _, _, label in entries]

    if kind == ImportKind.RECIPIENTS:
        classes = [c for c in catalog_services.list_assistance_classes() if c.active]
        table("assistance_classes", [(c.code, [c.code, c.name_zh, c.name_en], c.name_zh) for c in classes])
        for c in classes:
            subclasses[c.code] = {cols.key(alias): s["code"] for s in c.subclasses
                                  for alias in (s["code"], s["name_zh"], s["name_en"])}
            labels[f"subclasses:{c.code}"] = [s["name_zh"] for s in c.subclasses]
    if kind == ImportKind.NEEDS:
        types, _ = catalog_services.list_service_types(page_size=1000)
        table("service_types", [(t.code, [t.code, t.name_zh, t.name_en, f"{t.code}{t.name_zh}"], f"{t.code} {t.name_zh}")
                                for t in types])
    if kind == ImportKind.WORKERS:
        qualifications = catalog_services.list_qualifications()
        table("qualifications", [(q.code, [q.code, q.name_zh, q.name_en], q.name_zh) for q in qualifications])
        organisations = [o for o in registry.list_active_organisations()
                         if not principal.is_provider or o.id == principal.organisation_id]
        table("organisations", [(o.id, [o.credit_code, o.name_zh, o.name_en, o.short_name, str(o.id)],
                                 o.short_name or o.name_zh) for o in organisations])
        stations, _ = registry.list_stations(principal, active=True, page_size=100_000)
        table("stations", [(s.id, [s.code, s.name_zh, str(s.id)], s.code) for s in stations])
    return cols.Lookups(
        assistance_classes=tables.get("assistance_classes", {}), subclasses=subclasses,
        service_types=tables.get("service_types", {}), qualifications=tables.get("qualifications", {}),
        organisations=tables.get("organisations", {}), stations=tables.get("stations", {}), labels=labels,
    )


# --- files kept between the dry run and the commit (the import page) ------------------------


def _upload_dir() -> Path:
    directory = Path(current_app.instance_path) / "imports"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def _keep_minutes() -> int:
    return int(current_app.config.get("SERVICEHUB_IMPORT_KEEP_MINUTES") or DEFAULT_KEEP_MINUTES)


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600)
    path.write_text(text, encoding="utf-8")


def _keep_upload(principal: Principal, kind: ImportKind, data: bytes, file_name: str) -> str:
    """Keep a checked upload, encrypted with the data key, in the instance folder; returns its token."""
    directory = _upload_dir()
    cutoff = clock.time() - _keep_minutes() * 60
    for old in directory.glob("*.json"):
        if old.stat().st_mtime < cutoff:
            old.with_suffix(".bin").unlink(missing_ok=True)
            old.unlink(missing_ok=True)
    token = secrets.token_urlsafe(24)
    key = current_app.config["SERVICEHUB_DATA_KEY"]
    _write_private(directory / f"{token}.bin", crypto.encrypt(key, base64.b64encode(data).decode("ascii")))
    meta = {"user_id": principal.user_id, "kind": kind.value, "file_name": file_name, "kept_at": clock.time()}
    _write_private(directory / f"{token}.json", json.dumps(meta))
    return token


def _kept_upload(principal: Principal, token: str) -> tuple[dict, bytes]:
    gone = NotFound(gettext("The checked file is no longer kept (it is kept for %(minutes)d minutes). "
                            "Upload it again.", minutes=_keep_minutes()))
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise gone
    directory = _upload_dir()
    try:
        meta = json.loads((directory / f"{token}.json").read_text(encoding="utf-8"))
        sealed = (directory / f"{token}.bin").read_text(encoding="ascii")
    except (OSError, ValueError):
        raise gone from None
    if meta.get("user_id") != principal.user_id or meta.get("kept_at", 0) < clock.time() - _keep_minutes() * 60:
        raise gone
    data = base64.b64decode(crypto.decrypt(current_app.config["SERVICEHUB_DATA_KEY"], sealed))
    return meta, data


def _discard_upload(token: str) -> None:
    directory = _upload_dir()
    (directory / f"{token}.bin").unlink(missing_ok=True)
    (directory / f"{token}.json").unlink(missing_ok=True)

