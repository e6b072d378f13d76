"""The catalogue's stable codes, read from the seed file so that API schemas can enumerate them."""

from __future__ import annotations

import tomllib

from servicehub.config import SEED_DIR

CATALOG_FILE = SEED_DIR / "catalog.toml"


with CATALOG_FILE.open("rb") as _fh:
    _RAW = tomllib.load(_fh)

CATEGORY_CODES: list[str] = [c["code"] for c in _RAW.get("category", [])]
QUALIFICATION_CODES: list[str] = [q["code"] for q in _RAW.get("qualification", [])]
SERVICE_TYPE_CODES: list[str] = [t["code"] for c in _RAW.get("category", []) for t in c.get("types", [])]
ASSISTANCE_CLASS_CODES: list[str] = [a["code"] for a in _RAW.get("assistance_class", [])]
