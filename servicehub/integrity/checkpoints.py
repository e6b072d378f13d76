"""Signed checkpoints and what they prove. Pure module.

A checkpoint is what an auditor copies away from the server: for each organisation the head of its service-record
chain (how many records, the last one's hash), the hash of every frozen report, and the head of the audit log,
signed with an Ed25519 key that is not in the database. A database can then be checked against every checkpoint
taken of it: a chain whose record at a checkpoint's head is not the one the checkpoint saw was rewritten (even with
every later hash recomputed), one shorter than a checkpoint was cut or restored from an older backup, a frozen
report that is gone or hashes differently was deleted or replaced. What was written after the last checkpoint and
then changed is not found by this (the chains' own hashes find what was changed without recomputing them).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from servicehub.chain import canonical_json

FORMAT = "servicehub-checkpoint/1"


def N_(text: str) -> str:
    """Mark a message for translation where it is defined (it is translated where it is shown)."""
    return text


@dataclass(frozen=True)
class Problem:
    """One thing a verify found: a message template (English, marked for translation) and its values, some of
    them problems themselves (a chain's name, what broke it); `str()` is the English line the command prints."""

    template: str
    params: Mapping = field(default_factory=dict)

    def render(self, translate=lambda text: text) -> str:
        """The line, each template passed through `translate` (a page's gettext)."""
        def shown(value):
            if isinstance(value, Problem):
                return value.render(translate)
            if isinstance(value, (list, tuple)):
                return "; ".join(shown(v) for v in value)
            return value

        return translate(self.template) % {k: shown(v) for k, v in self.params.items()}

    def __str__(self) -> str:
        return self.render()


def organisation_chain(org: int) -> Problem:
    """The name of an organisation's chain, as problems say it."""
    return Problem(N_("organisation %(org)s's service records"), {"org": org})


AUDIT_LOG = Problem(N_("the audit log"))
# What breaks a chain inside itself (`servicehub.chain.BrokenLink.code`).
BREAKS = {
    "missing": N_("record %(sequence)s is missing (found %(found)s next)"),
    "out_of_order": N_("does not follow the record before it"),
    "changed": N_("its content was changed after it was written"),
}


def broken_chain(chain: Problem, link, unit: str = "record") -> Problem:
    """A chain broken inside itself, at `link` (a `servicehub.chain.BrokenLink`)."""
    template = (N_("%(chain)s: broken at entry #%(sequence)s (id %(record)s): %(what)s") if unit == "entry" else
                N_("%(chain)s: broken at record #%(sequence)s (id %(record)s): %(what)s"))
    what = Problem(BREAKS[link.code], {"sequence": link.sequence, "found": link.found})
    return Problem(template, {"chain": chain, "sequence": link.sequence, "record": link.record_id, "what": what})


class CheckpointError(ValueError):
    """A checkpoint file that cannot be trusted: unreadable, edited, or signed by another key."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


def private_key(seed: bytes) -> Ed25519PrivateKey:
    """The signing key made from its 32-byte seed."""
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The raw 32 bytes of the public key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public key as PEM text, to hand to auditors."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_key(text: str | bytes) -> Ed25519PublicKey:
    """A public key from PEM text or the base64 of its raw 32 bytes; CheckpointError if it is neither."""
    raw = text.encode() if isinstance(text, str) else text
    refused = Problem(N_("not an Ed25519 public key (PEM, or base64 of 32 bytes)"))
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(raw)
            if not isinstance(key, Ed25519PublicKey):
                raise CheckpointError(refused)
            return key
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(raw.strip(), validate=True))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(refused) from exc


def key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """A short name of a key pair: the first 16 hex digits of SHA-256 of its public key."""
    return hashlib.sha256(public_key_bytes(key)).hexdigest()[:16]


def report_hash(report: Mapping) -> str:
    """SHA-256 of a frozen report's every column in canonical JSON: a change to any of them changes it."""
    return hashlib.sha256(canonical_json(dict(report)).encode()).hexdigest()


def sign(payload: Mapping, key: Ed25519PrivateKey) -> str:
    """The checkpoint file's text: the payload, the key id and the signature over the payload's canonical JSON."""
    body = canonical_json(payload)
    signature = base64.b64encode(key.sign(body.encode())).decode()
    return json.dumps({"checkpoint": json.loads(body), "key_id": key_id(key), "signature": signature},
                      ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def open_signed(text: str, public: Ed25519PublicKey, name: str = "checkpoint") -> dict:
    """The payload of a checkpoint file, if it is signed by `public` and unchanged; CheckpointError otherwise."""
    try:
        document = json.loads(text)
        payload, signature = document["checkpoint"], base64.b64decode(document["signature"], validate=True)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(Problem(N_("%(file)s: not a checkpoint file"), {"file": name})) from exc
    if document.get("key_id") != key_id(public):
        raise CheckpointError(Problem(N_("%(file)s: signed by another key (key id %(theirs)s; this key is %(ours)s)"),
                                      {"file": name, "theirs": document.get("key_id"), "ours": key_id(public)}))
    try:
        public.verify(signature, canonical_json(payload).encode())
    except InvalidSignature as exc:
        raise CheckpointError(Problem(N_("%(file)s: its signature does not hold: the file was changed after it "
                                         "was signed"), {"file": name})) from exc
    if payload.get("format") != FORMAT:
        raise CheckpointError(Problem(N_("%(file)s: unknown format %(format)s"),
                                      {"file": name, "format": payload.get("format")}))
    return payload


@dataclass
class ChainNow:
    """A chain as the database holds it now: its length and the hashes at the sequences checkpoints name."""

    records: int
    hashes: dict[int, str] = field(default_factory=dict)


def chain_problems(chain: Problem, seen: Mapping, now: ChainNow | None, taken_at: str) -> list[Problem]:
    """What is wrong with one chain against one checkpoint's view of it ({"records": n, "hash": h})."""
    records = seen["records"]
    values = {"chain": chain, "taken_at": taken_at, "seen": records}
    if records == 0:
        return []
    if now is None or now.records == 0:
        return [Problem(N_("%(chain)s: the chain is gone (the checkpoint of %(taken_at)s saw %(seen)s records)"),
                        values)]
    if now.records < records:
        return [Problem(N_("%(chain)s: the chain is behind the checkpoint of %(taken_at)s: it saw %(seen)s records, "
                           "the database holds %(now)s (its tail was cut, or the database was restored from an "
                           "older backup)"), {**values, "now": now.records})]
    if now.hashes.get(records) != seen["hash"]:
        return [Problem(N_("%(chain)s: record #%(seen)s is not the one the checkpoint of %(taken_at)s saw: the "
                           "chain was rewritten up to there"), values)]
    return []


def problems_against(payload: Mapping, chains: Mapping[int, ChainNow], audit_log: ChainNow,
                     reports: Mapping[int, str]) -> list[tuple[str, Problem]]:
    """Every way the database differs from one checkpoint, as (what: "organisation:<id>", "audit_log" or
    "frozen_report:<id>", the problem): `chains` by organisation id, `reports` the hash of each frozen report by id
    (`report_hash`)."""
    taken_at = payload["taken_at"]
    problems = []
    for seen in payload["chains"]:
        org = seen["organisation_id"]
        problems += [(f"organisation:{org}", problem) for problem in
                     chain_problems(organisation_chain(org), seen, chains.get(org), taken_at)]
    problems += [("audit_log", problem) for problem in
                 chain_problems(AUDIT_LOG, payload["audit_log"], audit_log, taken_at)]
    for seen in payload["frozen_reports"]:
        values = {"id": seen["id"], "org": seen["organisation_id"], "first": seen["period_start"],
                  "last": seen["period_end"], "taken_at": taken_at}
        if seen["id"] not in reports:
            problems.append((f"frozen_report:{seen['id']}", Problem(N_(
                "frozen report %(id)s (organisation %(org)s, %(first)s to %(last)s): gone (the checkpoint of "
                "%(taken_at)s saw it)"), values)))
        elif reports[seen["id"]] != seen["hash"]:
            problems.append((f"frozen_report:{seen['id']}", Problem(N_(
                "frozen report %(id)s (organisation %(org)s, %(first)s to %(last)s): changed since the checkpoint of "
                "%(taken_at)s"), values)))
    return problems


def sequences_named(payloads: Iterable[Mapping]) -> tuple[dict[int, set[int]], set[int]]:
    """The sequences whose hashes the checkpoints need: by organisation, and of the audit log."""
    chains: dict[int, set[int]] = {}
    audit: set[int] = set()
    for payload in payloads:
        for seen in payload["chains"]:
            chains.setdefault(seen["organisation_id"], set()).add(seen["records"])
        audit.add(payload["audit_log"]["records"])
    return chains, audit
