"""Chinese identifiers and their check digits: resident ID numbers (GB 11643), unified social credit
codes (GB 32100), mainland mobile numbers, and the masking of ID numbers. Pure module.
"""

from __future__ import annotations

import re
from datetime import date

_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_ID_CHECK = "10X98765432"

_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, S, V, Z
_CREDIT_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]

# [0-9], not \d: \d also matches other scripts' digits (Arabic-Indic, full-width ...).
_MOBILE = re.compile(r"1[3-9][0-9]{9}")


def id_number_check_digit(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits of a resident ID number."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def id_number_problem(value: str, today: date | None = None) -> str | None:
    """Why `value` is not a valid 18-character resident ID number, or None if it is."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{17}[0-9X]", value):
        return "An ID number has 17 digits and a final digit or X."
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "The birth date inside the ID number is not a real date."
    if born < date(1900, 1, 1) or born > (today or date.today()):  # noqa: DTZ011 - a calendar date
        return "The birth date inside the ID number is not plausible."
    if id_number_check_digit(value[:17]) != value[17]:
        return "The ID number's check digit is wrong (GB 11643)."
    return None


def id_number_birth_date(value: str) -> date:
    """The birth date encoded in a valid resident ID number."""
    return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))


def age_in_years(birth: date, today: date) -> int:
    """Whole years from `birth` to `today` (a birthday counts from its day; 29 February from 1 March)."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def id_number_gender(value: str) -> str:
    """'male' or 'female', from the 17th digit of a valid resident ID number."""
    return "male" if int(value[16]) % 2 else "female"


def mask_id_number(value: str | None) -> str | None:
    """Show the first four and last four characters only: 3211**********123X."""
    if not value:
        return value
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_phone(value: str | None) -> str | None:
    """Show the first three and last four digits only: 138****5678."""
    if not value:
        return value
    return value[:3] + "****" + value[-4:] if len(value) >= 7 else "***"


def credit_code_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a unified social credit code."""
    total = sum(_CREDIT_ALPHABET.index(c) * w for c, w in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return _CREDIT_ALPHABET[(31 - total % 31) % 31]


def credit_code_problem(value: str) -> str | None:
    """Why `value` is not a valid unified social credit code, or None if it is."""
    if not isinstance(value, str) or len(value) != 18:
        return "A unified social credit code has 18 characters."
    if any(c not in _CREDIT_ALPHABET for c in value):
        return "A unified social credit code uses digits and capital letters except I, O, S, V and Z."
    if not re.fullmatch(r"[0-9]{6}", value[2:8]):
        return "Characters 3 to 8 of a unified social credit code are the area code (digits)."
    if credit_code_check_char(value[:17]) != value[17]:
        return "The code's check character is wrong (GB 32100)."
    return None


def mobile_problem(value: str) -> str | None:
    """Why `value` is not a mainland mobile number (11 digits starting 13-19), or None."""
    if not isinstance(value, str) or not _MOBILE.fullmatch(value):
        return "A mainland mobile number has 11 digits and starts with 13 to 19."
    return None
