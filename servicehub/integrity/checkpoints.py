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


class CheckpointError(ValueError):
    """A checkpoint file that cannot be trusted: unreadable, edited, or signed by another key."""


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
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(raw)
            if not isinstance(key, Ed25519PublicKey):
                raise CheckpointError("the public key is not an Ed25519 key")
            return key
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(raw.strip(), validate=True))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"not an Ed25519 public key (PEM, or base64 of 32 bytes): {exc}") from exc


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
        raise CheckpointError(f"{name}: not a checkpoint file ({exc})") from exc
    if document.get("key_id") != key_id(public):
        raise CheckpointError(f"{name}: signed by another key (key id {document.get('key_id')!r}; this key is "
                              f"{key_id(public)})")
    try:
        public.verify(signature, canonical_json(payload).encode())
    except InvalidSignature as exc:
        raise CheckpointError(f"{name}: its signature does not hold: the file was changed after it was signed") \
            from exc
    if payload.get("format") != FORMAT:
        raise CheckpointError(f"{name}: unknown format {payload.get('format')!r}")
    return payload


@dataclass
class ChainNow:
    """A chain as the database holds it now: its length and the hashes at the sequences checkpoints name."""

    records: int
    hashes: dict[int, str] = field(default_factory=dict)


def chain_problems(label: str, seen: Mapping, now: ChainNow | None, taken_at: str) -> list[str]:
    """What is wrong with one chain against one checkpoint's view of it ({"records": n, "hash": h})."""
    records = seen["records"]
    if records == 0:
        return []
    if now is None or now.records == 0:
        return [f"{label}: the chain is gone (the checkpoint of {taken_at} saw {records} records)"]
    if now.records < records:
        return [f"{label}: the chain is behind the checkpoint of {taken_at}: it saw {records} records, the "
                f"database holds {now.records} (its tail was cut, or the database was restored from an older backup)"]
    if now.hashes.get(records) != seen["hash"]:
        return [f"{label}: record #{records} is not the one the checkpoint of {taken_at} saw: the chain was "
                f"rewritten up to there"]
    return []


def problems_against(payload: Mapping, chains: Mapping[int, ChainNow], audit_log: ChainNow,
                     reports: Mapping[int, str]) -> list[tuple[str, str]]:
    """Every way the database differs from one checkpoint, as (what: "organisation:<id>", "audit_log" or
    "frozen_report:<id>", the problem): `chains` by organisation id, `reports` the hash of each frozen report by id
    (`report_hash`)."""
    taken_at = payload["taken_at"]
    problems = []
    for seen in payload["chains"]:
        org = seen["organisation_id"]
        problems += [(f"organisation:{org}", text) for text in
                     chain_problems(f"organisation {org}'s service records", seen, chains.get(org), taken_at)]
    problems += [("audit_log", text) for text in
                 chain_problems("the audit log", payload["audit_log"], audit_log, taken_at)]
    for seen in payload["frozen_reports"]:
        label = (f"frozen report {seen['id']} (organisation {seen['organisation_id']}, {seen['period_start']} to "
                 f"{seen['period_end']})")
        if seen["id"] not in reports:
            problems.append((f"frozen_report:{seen['id']}", f"{label}: gone (the checkpoint of {taken_at} saw it)"))
        elif reports[seen["id"]] != seen["hash"]:
            problems.append((f"frozen_report:{seen['id']}", f"{label}: changed since the checkpoint of {taken_at}"))
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
