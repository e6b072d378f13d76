"""Field encryption for sensitive identifiers: AES-GCM for the value, a keyed hash (HMAC-SHA256)
to find it again and to detect duplicates without decrypting anything. Pure module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1"


def _subkey(data_key: bytes, purpose: bytes) -> bytes:
    return hmac.new(data_key, b"servicehub:" + purpose, hashlib.sha256).digest()


def encrypt(data_key: bytes, plaintext: str) -> str:
    """Encrypt `plaintext` (random nonce each time): 'v1:<base64(nonce + ciphertext)>'."""
    nonce = os.urandom(12)
    sealed = AESGCM(_subkey(data_key, b"encrypt")).encrypt(nonce, plaintext.encode(), VERSION.encode())
    return f"{VERSION}:{base64.b64encode(nonce + sealed).decode()}"


def decrypt(data_key: bytes, token: str) -> str:
    """Decrypt what `encrypt` produced; raises ValueError if it was altered or the key is wrong."""
    version, _, payload = token.partition(":")
    if version != VERSION:
        raise ValueError(f"unknown encryption version {version!r}")
    raw = base64.b64decode(payload)
    try:
        return AESGCM(_subkey(data_key, b"encrypt")).decrypt(raw[:12], raw[12:], VERSION.encode()).decode()
    except Exception as exc:  # cryptography raises InvalidTag without a message
        raise ValueError("the value cannot be decrypted with this key") from exc


def lookup_hash(data_key: bytes, value: str) -> str:
    """A keyed hash of `value` (64 hex characters): equal values, equal hashes; nothing to reverse."""
    return hmac.new(_subkey(data_key, b"lookup"), value.encode(), hashlib.sha256).hexdigest()


def new_data_key() -> bytes:
    """A fresh 32-byte data key."""
    return os.urandom(32)


def confirmation_code(data_key: bytes, recipient_id: int) -> str:
    """The 4-digit code printed on a recipient's service card, read out to confirm a visit."""
    digest = hmac.new(_subkey(data_key, b"confirm"), str(recipient_id).encode(), hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:4], 'big') % 10_000:04d}"
