"""Phones at rest (registry.phones): sealed into encrypted, hash and masked columns; found however written."""

from types import SimpleNamespace

import pytest

from servicehub import crypto
from servicehub.registry import phones

KEY = bytes(range(32))


@pytest.mark.parametrize("written", ["13800138000", "138 0013 8000", "138-0013-8000", "+86 138 0013 8000",
                                     "008613800138000", "(138)00138000"])
def test_a_number_hashes_alike_however_written(written):
    assert phones.lookup_hash(KEY, written) == phones.lookup_hash(KEY, "13800138000")


def test_different_numbers_and_keys_hash_apart_and_no_number_has_no_hash():
    assert phones.lookup_hash(KEY, "13800138001") != phones.lookup_hash(KEY, "13800138000")
    assert phones.lookup_hash(bytes(32), "13800138000") != phones.lookup_hash(KEY, "13800138000")
    assert phones.lookup_hash(KEY, "0511-88886666") == phones.lookup_hash(KEY, "051188886666")
    assert phones.lookup_hash(KEY, "") is None and phones.lookup_hash(KEY, " - ") is None
    # a phone's hash is not an ID number's: the same text in another column finds nothing
    assert phones.lookup_hash(KEY, "13800138000") != crypto.lookup_hash(KEY, "13800138000")


def test_sealed_columns_hold_no_number_in_clear_and_give_it_back():
    sealed = phones.seal(KEY, "family_carer_phone", " 0511-88886666 ")
    assert set(sealed) == {"family_carer_phone_encrypted", "family_carer_phone_hash", "family_carer_phone_masked"}
    assert "88886666" not in sealed["family_carer_phone_encrypted"] + sealed["family_carer_phone_hash"]
    assert sealed["family_carer_phone_masked"] == "051****6666"
    assert phones.reveal(KEY, SimpleNamespace(**sealed), "family_carer_phone") == "0511-88886666"
    assert phones.seal(KEY, "phone", "13800138000") != phones.seal(KEY, "phone", "13800138000")  # a fresh nonce


def test_no_number_is_sealed_empty():
    empty = phones.seal(KEY, "phone", None)
    assert empty == {"phone_encrypted": "", "phone_hash": None, "phone_masked": ""}
    assert phones.reveal(KEY, SimpleNamespace(**empty), "phone") == ""


def test_the_audit_log_hides_ciphertext_and_hash_and_keeps_the_masked_number():
    assert phones.audit_mask("phone", "contact_phone") == {
        "phone_encrypted": None, "phone_hash": None, "contact_phone_encrypted": None, "contact_phone_hash": None}
