"""Checkpoints taken and the database verified against them, its chains and its ledger (load, then the pure
`checkpoints` module decides)."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select

from servicehub import chain
from servicehub.auth.audit import AUDIT_HASHED_FIELDS, first_broken_audit_link, record_event
from servicehub.auth.models import AuditLog
from servicehub.config import ConfigError, decode_ledger_key, ledger_key_from_instance
from servicehub.database import utcnow
from servicehub.errors import N_, NotFound, ValidationFailed
from servicehub.evaluation.models import FrozenReport
from servicehub.extensions import db
from servicehub.integrity import checkpoints
from servicehub.integrity.checkpoints import Problem
from servicehub.scheduling.models import Visit
from servicehub.visits import ledger
from servicehub.visits.deliveries import FIGURES, derived_deliveries
from servicehub.visits.models import ServiceRecord
from servicehub.visits.services import verify_ledgers

CHUNK = 2000
FILE_NAME = re.compile(r"^checkpoint-\d{8}T\d{6}Z(-\d+)?\.json$")
SHOWN_DIFFERENCES = 1000  # visits named one by one; beyond, counted


class LedgerKeyError(ValidationFailed):
    """The signing key cannot be used (a key file others can read, a value that is not a key)."""


def signing_key():
    """The Ed25519 key checkpoints are signed with: SERVICEHUB_LEDGER_KEY, else the instance folder's ledger_key."""
    try:
        value = current_app.config.get("SERVICEHUB_LEDGER_KEY") or ledger_key_from_instance(current_app.instance_path)
        return checkpoints.private_key(decode_ledger_key(value))
    except ConfigError as exc:
        raise LedgerKeyError(N_("The checkpoint signing key cannot be used: %(reason)s", reason=str(exc)),
                             {"ledger_key": [str(exc)]}, code="ledger_key") from exc


def checkpoint_dir() -> Path:
    """Where checkpoints are written and read by default: SERVICEHUB_CHECKPOINT_DIR or instance/checkpoints."""
    return Path(current_app.config.get("SERVICEHUB_CHECKPOINT_DIR") or Path(current_app.instance_path) / "checkpoints")


def public_key_info() -> dict:
    """The signing key's public half for auditors: its id and PEM text."""
    key = signing_key()
    return {"key_id": checkpoints.key_id(key), "pem": checkpoints.public_key_pem(key)}


def _chain_heads() -> dict[int, tuple[int, str]]:
    last = (select(ServiceRecord.organisation_id, func.max(ServiceRecord.sequence).label("head"))
            .group_by(ServiceRecord.organisation_id).subquery())
    rows = db.session.execute(select(ServiceRecord.organisation_id, ServiceRecord.sequence, ServiceRecord.hash)
                              .join(last, (ServiceRecord.organisation_id == last.c.organisation_id)
                                    & (ServiceRecord.sequence == last.c.head)))
    return {org: (sequence, digest) for org, sequence, digest in rows}


def _audit_head() -> tuple[int, str]:
    head = db.session.execute(select(AuditLog.sequence, AuditLog.hash).where(AuditLog.sequence.is_not(None))
                              .order_by(AuditLog.sequence.desc()).limit(1)).first()
    return (head.sequence, head.hash) if head else (0, chain.GENESIS)


def _report_hashes() -> dict[int, dict]:
    columns = FrozenReport.__table__.columns
    return {row["id"]: {"organisation_id": row["organisation_id"], "period_start": row["period_start"].isoformat(),
                        "period_end": row["period_end"].isoformat(), "hash": checkpoints.report_hash(row)}
            for row in db.session.execute(select(*columns).order_by(FrozenReport.id)).mappings()}


def take_checkpoint(out_dir: Path | None = None) -> dict:
    """Write a signed checkpoint of every chain head, frozen report and the audit log's head into `out_dir`
    (default `checkpoint_dir()`); returns its path and what it holds. Audited."""
    key = signing_key()
    directory = Path(out_dir) if out_dir else checkpoint_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ValidationFailed(N_("The checkpoint folder cannot be made: %(reason)s", reason=exc.strerror or str(exc)),
                      {"out": [str(exc)]}, code="checkpoint_dir") from exc
    now = utcnow().astimezone(UTC)
    audit_records, audit_hash = _audit_head()
    payload = {
        "format": checkpoints.FORMAT,
        "taken_at": now.isoformat(timespec="seconds"),
        "chains": [{"organisation_id": org, "records": sequence, "hash": digest}
                   for org, (sequence, digest) in sorted(_chain_heads().items())],
        "frozen_reports": [{"id": rid, **facts} for rid, facts in _report_hashes().items()],
        "audit_log": {"records": audit_records, "hash": audit_hash},
    }
    name = f"checkpoint-{now:%Y%m%dT%H%M%SZ}.json"
    path, n = directory / name, 1
    while path.exists():
        n += 1
        path = directory / f"checkpoint-{now:%Y%m%dT%H%M%SZ}-{n}.json"
    text = checkpoints.sign(payload, key)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise ValidationFailed(N_("The checkpoint cannot be written: %(reason)s", reason=exc.strerror or str(exc)),
                      {"out": [str(exc)]}, code="checkpoint_dir") from exc
    summary = {"file": path.name, "chains": len(payload["chains"]),
               "records": sum(c["records"] for c in payload["chains"]),
               "frozen_reports": len(payload["frozen_reports"]), "audit_records": audit_records,
               "key_id": checkpoints.key_id(key)}
    record_event(db.session, "checkpoint_taken", "integrity", None, **summary)
    db.session.commit()
    return {"path": path, **summary}


def list_checkpoints(directory: Path | None = None) -> list[dict]:
    """The checkpoint files in a folder (default `checkpoint_dir()`), newest first: name, size, modified."""
    directory = Path(directory) if directory else checkpoint_dir()
    if not directory.is_dir():
        return []
    files = [p for p in directory.iterdir() if p.is_file() and FILE_NAME.match(p.name)]
    return [{"name": p.name, "size": p.stat().st_size} for p in sorted(files, key=lambda p: p.name, reverse=True)]


def checkpoint_file(name: str) -> Path:
    """The path of one checkpoint of `checkpoint_dir()` by its file name (nothing else can be named), its download
    audited."""
    path = checkpoint_dir() / name
    if not FILE_NAME.match(name) or not path.is_file():
        raise NotFound(N_("No such checkpoint."))
    record_event(db.session, "checkpoint_downloaded", "integrity", None, file=name)
    db.session.commit()
    return path


@dataclass
class Verification:
    """What a verify run found: one line per problem (none: everything holds) and what it looked at."""

    problems: list[checkpoints.Problem] = field(default_factory=list)
    chains: list[dict] = field(default_factory=list)
    audit_records: int = 0
    checkpoints: list[str] = field(default_factory=list)
    visits_checked: int = 0
    visits_differing: int = 0
    flagged: set[str] = field(default_factory=set)  # what a checkpoint found wrong: "organisation:<id>" ...

    @property
    def ok(self) -> bool:
        """Nothing found."""
        return not self.problems


def _load_checkpoints(directory: Path, public, found: Verification) -> list[dict]:
    payloads = []
    for path in sorted(p for p in directory.iterdir() if p.is_file() and p.suffix == ".json"):
        try:
            payloads.append(checkpoints.open_signed(path.read_text(encoding="utf-8"), public, path.name))
            found.checkpoints.append(path.name)
        except checkpoints.CheckpointError as exc:
            found.problems.append(exc.problem)
        except UnicodeDecodeError:
            found.problems.append(Problem(N_("%(file)s: not a checkpoint file"), {"file": path.name}))
    return payloads


def _verify_chains(needed: dict[int, set[int]], found: Verification) -> dict[int, checkpoints.ChainNow]:
    chains = {}
    for result in verify_ledgers(keep=needed):
        org, broken = result["organisation_id"], result["broken"]
        found.chains.append({"organisation_id": org, "records": result["records"], "broken": broken})
        if broken:
            found.flagged.add(f"organisation:{org}")
            found.problems.append(checkpoints.broken_chain(checkpoints.organisation_chain(org), broken))
        chains[org] = checkpoints.ChainNow(result["records"], result["hashes"])
    return chains


def _verify_audit_log(needed: set[int], found: Verification) -> checkpoints.ChainNow:
    columns = [AuditLog.__table__.c[name] for name in (*AUDIT_HASHED_FIELDS, "id", "prev_hash", "hash")]
    unchained = db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.sequence.is_(None)))
    if unchained:
        found.problems.append(Problem(N_("the audit log: %(count)s rows have no place in its chain (written "
                                         "behind the application's back)"), {"count": unchained}))
    hashes, count = {}, 0

    def rows(result):
        nonlocal count
        for row in result:
            count += 1
            if row["sequence"] in needed:
                hashes[row["sequence"]] = row["hash"]
            yield row

    # Streamed: the log of a district's years does not fit in memory at once.
    with db.session.execute(select(*columns).where(AuditLog.sequence.is_not(None)).order_by(AuditLog.sequence)
                            .execution_options(yield_per=5000)).mappings() as result:
        broken = first_broken_audit_link(rows(result))
    if broken:
        found.problems.append(checkpoints.broken_chain(checkpoints.AUDIT_LOG, broken, unit="entry"))
        count = db.session.scalar(select(func.max(AuditLog.sequence))) or 0
        hashes.update(db.session.execute(select(AuditLog.sequence, AuditLog.hash)
                                         .where(AuditLog.sequence.in_(needed))).all())
    found.audit_records = count
    return checkpoints.ChainNow(count, hashes)


def _same(kept, derived) -> bool:
    if isinstance(kept, float) or isinstance(derived, float):
        return kept is not None and derived is not None and abs(kept - derived) < 0.001
    return kept == derived


def _verify_visits(found: Verification) -> None:
    """Re-derive from the ledger what reports sum (every visit's delivery columns and status); name every visit
    whose row says otherwise."""
    status_kinds = ServiceRecord.kind.in_(tuple(ledger.STATUS_AFTER))
    recorded = set(db.session.scalars(select(ServiceRecord.visit_id).where(status_kinds).distinct()))
    suspects = set(db.session.scalars(select(Visit.id).where(
        Visit.delivery_record_id.is_not(None) | Visit.status.in_(tuple(ledger.LEDGER_STATUSES)))))
    visit_ids = sorted(suspects | recorded)
    found.visits_checked = len(visit_ids)
    columns = [Visit.id, Visit.status, *(Visit.__table__.c[f"delivery_{name}"] for name in FIGURES)]
    for derived in derived_deliveries(db.session, visit_ids):  # a chunk of visits at a time
        chunk = list(derived)
        kept = {row.id: row for row in db.session.execute(select(*columns).where(Visit.id.in_(chunk)))}
        kinds = defaultdict(list)
        for visit_id, kind in db.session.execute(select(ServiceRecord.visit_id, ServiceRecord.kind)
                                                 .where(status_kinds, ServiceRecord.visit_id.in_(chunk))
                                                 .order_by(ServiceRecord.visit_id, ServiceRecord.sequence)):
            kinds[visit_id].append(kind)
        for visit_id, figures in derived.items():
            row = kept[visit_id]
            status = ledger.status_from_ledger(kinds.get(visit_id, ()))
            differences = []
            if status is not None and row.status != status:
                differences.append(Problem(N_("status is %(kept)s, the ledger says %(derived)s"),
                                           {"kept": row.status, "derived": status}))
            elif status is None and row.status in ledger.LEDGER_STATUSES:
                differences.append(Problem(N_("status is %(kept)s, the ledger holds no entry for it"),
                                           {"kept": row.status}))
            differences += [Problem(N_("%(column)s is %(kept)s, the ledger says %(derived)s"),
                                    {"column": f"delivery_{name}", "kept": repr(getattr(row, f"delivery_{name}")),
                                     "derived": repr(figures[name])})
                            for name in FIGURES if not _same(getattr(row, f"delivery_{name}"), figures[name])]
            if differences:
                found.visits_differing += 1
                if found.visits_differing <= SHOWN_DIFFERENCES:
                    found.problems.append(Problem(N_("visit %(visit)s: %(differences)s"),
                                                  {"visit": visit_id, "differences": differences}))
    if found.visits_differing > SHOWN_DIFFERENCES:
        found.problems.append(Problem(N_("... and %(count)s more visits whose rows differ from the ledger"),
                                      {"count": found.visits_differing - SHOWN_DIFFERENCES}))


def verify(directory: Path | None = None, public=None, *, audited: bool = True) -> Verification:
    """Check every chain, the audit log and what reports sum against the ledger, and the database against every
    checkpoint in `directory` (default `checkpoint_dir()`), signed by `public` (default: this server's key)."""
    found = Verification()
    directory = Path(directory) if directory else checkpoint_dir()
    payloads = []
    if directory.is_dir():
        payloads = _load_checkpoints(directory, public or signing_key().public_key(), found)
    elif directory != checkpoint_dir():
        raise ValidationFailed(N_("No such folder of checkpoints: %(path)s", path=str(directory)),
                      {"checkpoints": ["No such folder."]}, code="no_checkpoints")
    needed_chains, needed_audit = checkpoints.sequences_named(payloads)
    chains = _verify_chains(needed_chains, found)
    audit_log = _verify_audit_log(needed_audit, found)
    reports = {rid: facts["hash"] for rid, facts in _report_hashes().items()}
    for name, payload in zip(found.checkpoints, payloads, strict=True):
        for subject, problem in checkpoints.problems_against(payload, chains, audit_log, reports):
            found.problems.append(Problem(N_("%(file)s: %(problem)s"), {"file": name, "problem": problem}))
            found.flagged.add(subject)
    _verify_visits(found)
    db.session.rollback()
    if audited:
        record_event(db.session, "integrity_verified", "integrity", None, problems=len(found.problems),
                     checkpoints=len(found.checkpoints))
        db.session.commit()
    return found
