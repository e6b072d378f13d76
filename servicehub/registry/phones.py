"""Phone numbers of people at rest: a recipient's, their family carer's, a worker's, an applicant's and their
contact's. Each is three columns, like the ID number: `<name>_encrypted` (AES-GCM under the data key),
`<name>_hash` (a keyed hash of the normalised number: how a number is found again — the public status check, the
registry's look-ups, the flood limit) and `<name>_masked` (138****5678: what a role that must not see the number
is shown, and what the audit log holds). Pure module: the key is passed in.
"""

from __future__ import annotations

import re

from servicehub import crypto
from servicehub.registry.identifiers import mask_phone

PREFIXES = ("+86", "0086")  # China's country code, as numbers are written from abroad


def digits(value: str | None) -> str:
    """A number as it is looked up: spaces, dashes and brackets dropped, and a +86 or 0086 prefix."""
    text = re.sub(r"[\s\-()]", "", value or "")
    for prefix in PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def lookup_hash(key: bytes, value: str | None) -> str | None:
    """The keyed hash a number is found by (None for no number): 0511-88886666 and 051188886666 hash alike."""
    number = digits(value)
    return crypto.lookup_hash(key, f"phone:{number}") if number else None


def seal(key: bytes, name: str, value: str | None) -> dict[str, str | None]:
    """The three columns of the phone `name` holding `value` as given ('' and None: no number)."""
    value = (value or "").strip()
    if not value:
        return {f"{name}_encrypted": "", f"{name}_hash": None, f"{name}_masked": ""}
    return {f"{name}_encrypted": crypto.encrypt(key, value), f"{name}_hash": lookup_hash(key, value),
            f"{name}_masked": mask_phone(value)}


def reveal(key: bytes, row: object, name: str) -> str:
    """The phone `name` of `row` in clear ('' when there is none)."""
    token = getattr(row, f"{name}_encrypted")
    return crypto.decrypt(key, token) if token else ""


def audit_mask(*names: str) -> dict[str, None]:
    """The audit log's masks for these phones: ciphertext and hash hidden (the masked number shows a change)."""
    return {f"{name}_{part}": None for name in names for part in ("encrypted", "hash")}
