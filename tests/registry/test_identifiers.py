"""ID numbers (GB 11643), credit codes (GB 32100), mobile numbers and masking."""

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicehub.registry.identifiers import (
    credit_code_check_char,
    credit_code_problem,
    id_number_birth_date,
    id_number_check_digit,
    id_number_gender,
    id_number_problem,
    mask_id_number,
    mobile_problem,
)

VALID_ID = "11010519491231002X"  # the standard's own example


def test_the_standards_example_is_valid():
    assert id_number_problem(VALID_ID) is None
    assert id_number_birth_date(VALID_ID) == date(1949, 12, 31)
    assert id_number_gender(VALID_ID) == "female"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("11010519491231002", "17 digits"),
        ("110105194912310021", "check digit"),
        ("11010519491332002X", "not a real date"),
        ("11010518991231002X", "plausible"),
        ("11010530001231002X", "plausible"),
        ("1101051949123100XX", "17 digits"),
        ("１１０１０５19491231002X", "17 digits"),  # full-width digits are not digits here
    ],
)
def test_bad_id_numbers(value, reason):
    assert reason in id_number_problem(value, today=date(2026, 11, 29))


@given(st.from_regex(r"\A[0-9]{6}(19[0-9]{2}|20[01][0-9])(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])[0-9]{3}\Z"))
def test_any_id_with_its_computed_check_digit_is_valid(first17):
    assert id_number_problem(first17 + id_number_check_digit(first17), today=date(2026, 11, 29)) is None


@given(st.from_regex(r"\A[0-9]{6}(19[5-9][0-9])(0[1-9]|1[0-2])(0[1-9]|1[0-9]|2[0-8])[0-9]{3}\Z"), st.sampled_from("0123456789X"))
def test_a_wrong_check_digit_is_always_caught(first17, check):
    if check != id_number_check_digit(first17):
        assert "check digit" in id_number_problem(first17 + check, today=date(2026, 11, 29))


def test_masking_keeps_four_and_four():
    assert mask_id_number(VALID_ID) == "1101**********002X"
    assert mask_id_number(None) is None


def test_credit_code_check():
    body = "91350100M000100Y4"
    code = body + credit_code_check_char(body)
    assert credit_code_problem(code) is None
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert "check character" in credit_code_problem(wrong)
    assert "18 characters" in credit_code_problem(code[:-1])
    assert "except I, O" in credit_code_problem("I" + code[1:])


@given(st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=2, max_size=2), st.from_regex(r"\A[0-9]{6}\Z"),
       st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=9, max_size=9))
def test_any_credit_code_with_its_check_character_is_valid(head, area, tail):
    body = head + area + tail
    assert credit_code_problem(body + credit_code_check_char(body)) is None


@pytest.mark.parametrize(("value", "ok"), [("13812345678", True), ("19912345678", True), ("12812345678", False),
                                           ("1381234567", False), ("+8613812345678", False),
                                           ("138１２３４５６７８", False)])
def test_mobile_numbers(value, ok):
    assert (mobile_problem(value) is None) is ok
