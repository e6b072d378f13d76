"""The catalogue's stable codes, read from the seed file so that API schemas can enumerate them."""

from __future__ import annotations

import tomllib

from servicehub.config import SEED_DIR

CATALOG_FILE = SEED_DIR / "catalog.toml"


def _read_codes() -> tuple[list[str], list[str]]:
    with CATALOG_FILE.open("rb") as fh:
        raw = tomllib.load(fh)
    categories = [c["code"] for c in raw.get("category", [])]
    qualifications = [q["code"] for q in raw.get("qualification", [])]
    return categories, qualifications


CATEGORY_CODES, QUALIFICATION_CODES = _read_codes()
