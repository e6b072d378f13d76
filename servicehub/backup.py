"""Backups of the whole database and their restore: `pg_dump`/`pg_restore` on PostgreSQL, SQLite's online
backup API on SQLite. Each backup has a manifest beside it (engine, schema revision, row counts, SHA-256), and a
restore checks the file against it before replacing anything, then checks the rows it restored.

The data key (SERVICEHUB_DATA_KEY, or instance/data_key) is not in a backup: without it the ID numbers of a
restored database cannot be read, so it is kept apart from the backups (docs/deploy.md, "Backups").
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from servicehub.errors import N_, Conflict, ValidationFailed
from servicehub.extensions import db
from servicehub.privileges import grant_app_role, migration_url, separate_app_role

SUFFIX = {"postgresql": ".dump", "sqlite": ".sqlite3"}
# Tables whose rows a manifest counts, so that a restore can show it brought everything back.
COUNTED = ("organisations", "recipients", "needs", "referrals", "visits", "service_records", "applications",
           "audit_log", "users")


def _engine_name() -> str:
    return db.engine.dialect.name


def _libpq_url(url: str | None = None) -> str:
    """A database URL (the app's by default) as pg_dump and pg_restore take it (no SQLAlchemy driver part)."""
    return make_url(url or current_app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql").render_as_string(
        hide_password=False)


def _sqlite_path() -> Path:
    return Path(make_url(current_app.config["SQLALCHEMY_DATABASE_URI"]).database)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def row_counts() -> dict[str, int]:
    """Rows of the counted tables, as the database has them now."""
    tables = db.metadata.tables
    return {name: db.session.scalar(select(func.count()).select_from(tables[name])) for name in COUNTED
            if name in tables}


def _revision() -> str:
    return db.session.execute(text("SELECT version_num FROM alembic_version")).scalar() or ""


def default_directory() -> Path:
    """instance/backups"""
    return Path(current_app.instance_path) / "backups"


def make_backup(directory: Path | None = None, keep: int | None = None) -> dict:
    """Back the database up into `directory` (default instance/backups) with its manifest; with `keep`, delete
    all but the newest `keep` backups there. Returns the manifest."""
    directory = Path(directory or default_directory())
    directory.mkdir(parents=True, exist_ok=True)
    engine = _engine_name()
    now = datetime.now(UTC)
    stamp = f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z"  # sorts in time order; two a second apart
    path = directory / f"servicehub-{stamp}{SUFFIX[engine]}"
    counts, revision = row_counts(), _revision()
    db.session.commit()  # end the read transaction before the copy
    # Made 0600 before a byte is written (pg_dump and SQLite write into it and keep its mode): the personal data of
    # vulnerable people is never readable by other accounts, not even while the copy runs.
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    if engine == "postgresql":
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={path}", _libpq_url()])
    else:
        source = sqlite3.connect(_sqlite_path())
        target = sqlite3.connect(path)
        try:
            source.backup(target)  # SQLite's online backup: a consistent copy while others read and write
        finally:
            target.close()
            source.close()
    manifest = {"file": path.name, "engine": engine, "revision": revision, "counts": counts,
                "sha256": _sha256(path), "bytes": path.stat().st_size,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    path.with_name(path.name + ".json").write_text(json.dumps(manifest, indent=2))
    manifest["removed"] = prune(directory, keep) if keep else []
    return manifest


def prune(directory: Path, keep: int) -> list[str]:
    """Delete all but the newest `keep` backups (and their manifests) in `directory`; the names removed, oldest
    first."""
    backups = sorted((p for p in directory.glob("servicehub-*") if p.suffix in SUFFIX.values()), reverse=True)
    removed = []
    for old in backups[keep:]:
        old.unlink()
        old.with_name(old.name + ".json").unlink(missing_ok=True)
        removed.append(old.name)
    return sorted(removed)


def read_manifest(path: Path) -> dict:
    """The manifest of a backup file, checked against the file (422 naming `backup` when it does not match)."""
    path = Path(path)
    manifest_path = path.with_name(path.name + ".json")
    if not path.is_file() or not manifest_path.is_file():
        raise ValidationFailed(N_("No such backup (or its manifest is missing)."), {"backup": [str(path)]})
    manifest = json.loads(manifest_path.read_text())
    if _sha256(path) != manifest["sha256"]:
        raise ValidationFailed(N_("The backup file does not match its manifest (damaged or changed)."),
                               {"backup": ["SHA-256 differs from the manifest."]})
    return manifest


def restore_backup(path: Path) -> dict:
    """Replace the whole database with a backup of the same engine, after checking the file against its
    manifest; then check that the restored rows are the manifest's. Returns what was restored."""
    path = Path(path)
    manifest = read_manifest(path)
    engine = _engine_name()
    if manifest["engine"] != engine:
        raise Conflict(f"A {manifest['engine']} backup cannot be restored into {engine}.",
                       {"backup": [manifest["engine"]]}, code="wrong_engine")
    db.session.remove()
    db.engine.dispose()  # no connection of ours holds a lock on what is replaced
    if engine == "postgresql":
        # As the role that owns the tables (it drops and makes them again); the app's own role, where it has one,
        # then gets its grants on the new tables.
        _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
              f"--dbname={_libpq_url(migration_url())}", str(path)])
        if (app_role := separate_app_role()) is not None:
            grant_app_role(app_role)
    else:
        source = sqlite3.connect(path)
        target = sqlite3.connect(_sqlite_path())
        try:
            source.backup(target)  # page by page, under SQLite's own lock: all or nothing for readers
        finally:
            target.close()
            source.close()
    counts, revision = row_counts(), _revision()
    db.session.commit()
    if counts != manifest["counts"] or revision != manifest["revision"]:
        raise Conflict(N_("The restored database differs from the backup's manifest."),
                       {"backup": [f"restored {counts} at {revision}, expected {manifest['counts']} at "
                                   f"{manifest['revision']}"]}, code="restore_mismatch")
    return {"file": path.name, "revision": revision, "counts": counts}


def _run(command: list[str]) -> None:
    tool = shutil.which(command[0])
    if tool is None:
        raise Conflict(f"{command[0]} is not installed (PostgreSQL's client tools).", code="tool_missing")
    finished = subprocess.run([tool, *command[1:]], capture_output=True, text=True)
    if finished.returncode != 0:
        raise Conflict(f"{command[0]} failed: {finished.stderr.strip()[:2000]}", code="backup_failed")
