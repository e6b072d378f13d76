"""The recipient's confirmation of a visit: one-time codes and signature images. Pure module.

A recipient's card holds one secret. From it come two kinds of six-digit one-time code:

- on a family member's phone, a new code every 30 seconds (TOTP, RFC 6238: any authenticator app, set up from the
  QR code printed on the card); a code is accepted one step either side of the visit's time, and once only (the
  time steps used are remembered, so records sent late from an offline phone may arrive in any order);
- on the printed card, a numbered list of codes for a recipient without such a phone (HOTP, RFC 4226): the
  recipient reads out the next one not crossed out and crosses it out; a code is accepted once, and only among the
  next few (`LOOK_AHEAD`) after the last one used, so a list seen once is not a list of codes to use later.

The server keeps the secret encrypted; nobody reads it back (the card is printed once, when it is issued, and
issuing a new one revokes the old). A signature counts only if it is a real image of a signature: a PNG of a
minimum size with some, but not too much, ink.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import io
from dataclasses import dataclass
from datetime import datetime

import pyotp
from PIL import Image, UnidentifiedImageError

STEP_SECONDS = 30
DIGITS = 6
WINDOW = 1  # time steps accepted either side of the visit's time
EXPIRED_STEPS = 20  # a code of up to ten minutes before is refused as expired (not as wrong)
LOOK_AHEAD = 5  # printed codes accepted after the last one used
PRINTED_CODES = 40  # codes on a printed card
# Used phone codes remembered: a week and a day of time steps (a record may be sent up to a week later).
KEPT_STEPS = 8 * 24 * 3600 // STEP_SECONDS
ISSUER = "ServiceHub"

SIGNATURE_PREFIX = "data:image/png;base64,"
SIGNATURE_MIN_SIZE = (160, 60)  # pixels, width x height
SIGNATURE_MAX_PIXELS = 4_000_000  # a larger one is refused before it is decoded
SIGNATURE_INK = (0.004, 0.5)  # the share of dark pixels: some ink, but not a filled box
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def new_secret() -> str:
    """A fresh random secret (base32, 160 bits)."""
    return pyotp.random_base32(32)


def phone_uri(secret: str, label: str) -> str:
    """The otpauth:// address a phone's authenticator app reads from the card's QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(name=label, issuer_name=ISSUER)


def phone_code(secret: str, moment: datetime) -> str:
    """The code a phone shows at `moment`."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).at(moment)


def printed_code(secret: str, number: int) -> str:
    """The printed card's code number `number` (from 0)."""
    return pyotp.HOTP(secret, digits=DIGITS).at(number)


def printed_list(secret: str, count: int = PRINTED_CODES) -> list[str]:
    """The codes printed on a card, in the order they are used."""
    return [printed_code(secret, number) for number in range(count)]


@dataclass(frozen=True)
class CardState:
    """What the server remembers of a card's use."""

    printed_codes: int
    printed_next: int = 0  # the first printed code not used yet
    phone_steps: tuple[int, ...] = ()  # the time steps whose phone codes were used (the last `KEPT_STEPS`)


@dataclass(frozen=True)
class Accepted:
    """A code that confirms the visit: which kind, and the counter that is now used."""

    kind: str  # phone | printed
    counter: int


@dataclass(frozen=True)
class Refused:
    """A code that does not: wrong, expired (a phone code of minutes ago) or reused."""

    outcome: str  # wrong | expired | reused


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def check_code(secret: str, code: str, moment: datetime, card: CardState) -> Accepted | Refused:
    """Whether `code`, given for a visit at `moment`, is one of the card's: a phone code of that time (one step
    either side) not used before, or one of the next printed codes."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    step = int(moment.timestamp()) // STEP_SECONDS
    for candidate in range(step - WINDOW, step + WINDOW + 1):
        if _same(totp.at(candidate * STEP_SECONDS), code):
            return Refused("reused") if candidate in card.phone_steps else Accepted("phone", candidate)
    for number in range(card.printed_next, min(card.printed_next + LOOK_AHEAD, card.printed_codes)):
        if _same(printed_code(secret, number), code):
            return Accepted("printed", number)
    if any(_same(printed_code(secret, number), code) for number in range(card.printed_next)):
        return Refused("reused")
    if any(_same(totp.at(candidate * STEP_SECONDS), code) for candidate in range(step - EXPIRED_STEPS, step - WINDOW)):
        return Refused("expired")
    return Refused("wrong")


def after_use(card: CardState, accepted: Accepted) -> CardState:
    """The card's state once `accepted` is used: a phone code's time step is spent (visits sent from phones that were
    offline may arrive in any order, so it is that step, not every one before it); a printed code is spent with
    every one before it."""
    if accepted.kind == "phone":
        steps = sorted({*card.phone_steps, accepted.counter})
        return CardState(card.printed_codes, card.printed_next, tuple(s for s in steps if s > steps[-1] - KEPT_STEPS))
    return CardState(card.printed_codes, accepted.counter + 1, card.phone_steps)


def signature_problem(data_url: str) -> str | None:
    """Why a signature image does not count (None if it does): it must be a PNG data URL of at least
    `SIGNATURE_MIN_SIZE` pixels with some ink on it, and not a filled box."""
    if not data_url.startswith(SIGNATURE_PREFIX):
        return "Expected a PNG image as a data URL (data:image/png;base64,…)."
    try:
        raw = base64.b64decode(data_url[len(SIGNATURE_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        return "The image is not valid base64."
    if not raw.startswith(PNG_MAGIC):
        return "The image is not a PNG."
    try:
        with Image.open(io.BytesIO(raw)) as image:
            width, height = image.size  # from the header: checked before the pixels are decoded
            if width < SIGNATURE_MIN_SIZE[0] or height < SIGNATURE_MIN_SIZE[1]:
                return (f"The image is {width}×{height} pixels; a signature is at least "
                        f"{SIGNATURE_MIN_SIZE[0]}×{SIGNATURE_MIN_SIZE[1]}.")
            if width * height > SIGNATURE_MAX_PIXELS:
                return f"The image is {width}×{height} pixels; a signature is at most {SIGNATURE_MAX_PIXELS:,} pixels."
            image.load()
            ink = _ink_share(image)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return "The image cannot be read."
    if ink < SIGNATURE_INK[0]:
        return "The image is blank: nothing was signed."
    if ink > SIGNATURE_INK[1]:
        return "The image is mostly filled in: not a signature."
    return None


def _ink_share(image: Image.Image) -> float:
    """The share of dark pixels, transparent ones counted as paper."""
    rgba = image.convert("RGBA")
    paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    grey = Image.alpha_composite(paper, rgba).convert("L")
    histogram = grey.histogram()
    return sum(histogram[:128]) / (rgba.size[0] * rgba.size[1])
