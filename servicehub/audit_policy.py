"""Which models the audit log follows, and how their fields appear in it. Pure module.

A model opts in by inheriting `Audited`. Its changed columns are written to the audit log in the
same transaction as the change, except `__audit_exclude__`; `__audit_mask__` maps sensitive columns
to a function that masks them (default: hidden entirely).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

HIDDEN = "***"


class Audited:
    """Mixin: every insert, update and delete of this model is written to the audit log."""

    __audit_exclude__: ClassVar[frozenset[str]] = frozenset({"created_at", "updated_at"})
    __audit_mask__: ClassVar[dict[str, Callable[[object], object] | None]] = {}

    @classmethod
    def audit_value(cls, column: str, value: object) -> object:
        """The value as the audit log shows it: masked if the column is sensitive."""
        if column in cls.__audit_mask__:
            masker = cls.__audit_mask__[column]
            return masker(value) if masker and value is not None else (HIDDEN if value is not None else None)
        return value
