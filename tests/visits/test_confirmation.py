"""The recipient's confirmation without Flask or a database: one-time codes of a family member's phone (RFC 6238)
and of the printed card (RFC 4226), and signature images (built with Pillow)."""

import base64
import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image, ImageDraw

from servicehub.visits import confirmation as c

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
AT = datetime(2026, 11, 10, 2, 0, 10, tzinfo=UTC)  # 10 s into a 30-second step
FRESH = c.CardState(printed_codes=c.PRINTED_CODES)


def step(moment: datetime) -> int:
    return int(moment.timestamp()) // c.STEP_SECONDS


def never_a_code(state: c.CardState = FRESH) -> str:
    """A six-digit string that is none of the card's codes around AT (so it can only be wrong)."""
    taken = {c.phone_code(SECRET, AT + timedelta(seconds=30 * k)) for k in range(-30, 31)}
    taken |= set(c.printed_list(SECRET))
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in taken)


# --- the phone's codes ---------------------------------------------------------------------------------------------


def test_the_phone_code_is_the_rfc_6238_one():
    # RFC 6238's test secret ("12345678901234567890") at 59 s: 94287082, of which six digits are 287082.
    rfc_secret = base64.b32encode(b"12345678901234567890").decode()
    assert c.phone_code(rfc_secret, datetime.fromtimestamp(59, UTC)) == "287082"
    assert c.printed_code(rfc_secret, 0) == "755224" and c.printed_code(rfc_secret, 1) == "287082"  # RFC 4226


@pytest.mark.parametrize("steps", [-1, 0, 1])
def test_a_phone_code_is_accepted_one_step_either_side_of_the_visits_time(steps):
    shown_at = AT + timedelta(seconds=30 * steps)
    accepted = c.check_code(SECRET, c.phone_code(SECRET, shown_at), AT, FRESH)
    assert accepted == c.Accepted("phone", step(shown_at))


@pytest.mark.parametrize("later", [timedelta(seconds=90), timedelta(minutes=3), timedelta(minutes=9)])
def test_a_phone_code_given_minutes_later_is_refused_as_expired(later):
    code = c.phone_code(SECRET, AT)
    assert c.check_code(SECRET, code, AT + later, FRESH) == c.Refused("expired")


def test_a_phone_code_of_long_ago_or_of_the_future_is_simply_wrong():
    assert c.check_code(SECRET, c.phone_code(SECRET, AT), AT + timedelta(minutes=15), FRESH) == c.Refused("wrong")
    assert c.check_code(SECRET, c.phone_code(SECRET, AT + timedelta(minutes=2)), AT, FRESH) == c.Refused("wrong")


def test_a_phone_code_is_used_once():
    code = c.phone_code(SECRET, AT)
    first = c.check_code(SECRET, code, AT, FRESH)
    used = c.after_use(FRESH, first)
    assert used.phone_steps == (step(AT),) and used.printed_next == 0
    assert c.check_code(SECRET, code, AT + timedelta(seconds=5), used) == c.Refused("reused")
    following = c.phone_code(SECRET, AT + timedelta(seconds=30))
    assert c.check_code(SECRET, following, AT + timedelta(seconds=30), used) == c.Accepted("phone", step(AT) + 1)


def test_phone_codes_of_two_visits_sent_late_in_the_reverse_order_are_both_accepted_once():
    # Two visits of one recipient in a morning, both recorded on phones that were offline: the later one arrives
    # first. The earlier visit's code was never used, so it confirms its visit; neither works a second time.
    morning, noon = AT - timedelta(hours=3), AT
    late_first = c.after_use(FRESH, c.check_code(SECRET, c.phone_code(SECRET, noon), noon, FRESH))
    earlier = c.check_code(SECRET, c.phone_code(SECRET, morning), morning, late_first)
    assert earlier == c.Accepted("phone", step(morning))
    both = c.after_use(late_first, earlier)
    assert both.phone_steps == (step(morning), step(noon))
    assert c.check_code(SECRET, c.phone_code(SECRET, morning), morning, both) == c.Refused("reused")
    assert c.check_code(SECRET, c.phone_code(SECRET, noon), noon, both) == c.Refused("reused")


def test_used_phone_steps_are_remembered_for_a_week_and_a_day():
    old = c.after_use(FRESH, c.Accepted("phone", step(AT) - c.KEPT_STEPS - 5))
    now = c.after_use(old, c.Accepted("phone", step(AT)))
    assert now.phone_steps == (step(AT),)


def test_a_code_that_is_none_of_the_cards_is_wrong():
    assert c.check_code(SECRET, never_a_code(), AT, FRESH) == c.Refused("wrong")


# --- the printed card's codes --------------------------------------------------------------------------------------


def test_printed_codes_are_taken_in_order_with_a_few_of_look_ahead():
    codes = c.printed_list(SECRET)
    assert len(codes) == c.PRINTED_CODES == len(set(codes)) and all(len(x) == 6 and x.isdigit() for x in codes)
    first = c.check_code(SECRET, codes[0], AT, FRESH)
    assert first == c.Accepted("printed", 0)
    state = c.after_use(FRESH, first)
    assert state.printed_next == 1
    # The next five after the last one used are accepted (a code skipped by mistake does not lock the card) …
    for number in range(1, 1 + c.LOOK_AHEAD):
        assert c.check_code(SECRET, codes[number], AT, state) == c.Accepted("printed", number)
    # … but not one further down the list.
    assert c.check_code(SECRET, codes[1 + c.LOOK_AHEAD], AT, state) == c.Refused("wrong")


def test_a_printed_code_is_used_once_and_skipping_ahead_spends_the_ones_before():
    codes = c.printed_list(SECRET)
    state = c.after_use(FRESH, c.check_code(SECRET, codes[0], AT, FRESH))
    assert c.check_code(SECRET, codes[0], AT, state) == c.Refused("reused")
    skipped = c.check_code(SECRET, codes[3], AT, state)
    state = c.after_use(state, skipped)
    assert state.printed_next == 4
    assert c.check_code(SECRET, codes[1], AT, state) == c.Refused("reused")
    assert c.check_code(SECRET, codes[4], AT, state) == c.Accepted("printed", 4)


def test_printed_codes_do_not_run_past_the_end_of_the_card():
    codes = c.printed_list(SECRET)
    last = c.CardState(printed_codes=c.PRINTED_CODES, printed_next=c.PRINTED_CODES - 1)
    assert c.check_code(SECRET, codes[-1], AT, last) == c.Accepted("printed", c.PRINTED_CODES - 1)
    spent = c.after_use(last, c.Accepted("printed", c.PRINTED_CODES - 1))
    assert c.check_code(SECRET, c.printed_code(SECRET, c.PRINTED_CODES), AT, spent) == c.Refused("wrong")


def test_phone_and_printed_codes_are_spent_separately():
    codes = c.printed_list(SECRET)
    state = c.after_use(FRESH, c.check_code(SECRET, c.phone_code(SECRET, AT), AT, FRESH))
    assert c.check_code(SECRET, codes[0], AT, state) == c.Accepted("printed", 0)


def test_the_phones_set_up_address_names_the_issuer_and_the_card():
    uri = c.phone_uri(SECRET, "对象0 #1")
    assert uri.startswith("otpauth://totp/") and f"secret={SECRET}" in uri and "issuer=ServiceHub" in uri
    assert len(c.new_secret()) == 32 and c.new_secret() != c.new_secret()


# --- signatures ----------------------------------------------------------------------------------------------------


def png_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return c.SIGNATURE_PREFIX + base64.b64encode(buffer.getvalue()).decode()


def signed(size=(240, 90)) -> Image.Image:
    """A pen stroke on a transparent pad, as a phone's signature pad gives it."""
    image = Image.new("RGBA", size, (255, 255, 255, 0))
    pen = ImageDraw.Draw(image)
    pen.line([(15, 60), (50, 20), (80, 65), (120, 25), (160, 62), (200, 30)], fill=(20, 20, 60, 255), width=3)
    return image


def test_a_drawn_signature_counts():
    assert c.signature_problem(png_url(signed())) is None
    on_paper = Image.new("L", (320, 120), 255)
    ImageDraw.Draw(on_paper).line([(20, 80), (300, 40)], fill=0, width=4)
    assert c.signature_problem(png_url(on_paper)) is None


@pytest.mark.parametrize(("data_url", "problem"), [
    pytest.param(lambda: png_url(Image.new("RGBA", (1, 1), (0, 0, 0, 255))), "1×1 pixels", id="one-pixel"),
    pytest.param(lambda: png_url(signed((159, 90))), "159×90", id="too-narrow"),
    pytest.param(lambda: png_url(Image.new("RGBA", (240, 90), (255, 255, 255, 0))), "blank", id="blank"),
    pytest.param(lambda: png_url(Image.new("RGB", (240, 90), (255, 255, 255))), "blank", id="white"),
    pytest.param(lambda: png_url(Image.new("RGB", (240, 90), (0, 0, 0))), "filled", id="filled"),
    pytest.param(lambda: png_url(Image.new("L", (3000, 2000), 255)), "at most", id="too-large"),
])
def test_an_image_that_is_not_a_signature_is_refused(data_url, problem):
    found = c.signature_problem(data_url())
    assert found is not None and problem in found


def test_anything_but_a_png_data_url_is_refused():
    buffer = io.BytesIO()
    signed().convert("RGB").save(buffer, format="JPEG")
    jpeg = base64.b64encode(buffer.getvalue()).decode()
    assert "not a PNG" in c.signature_problem(c.SIGNATURE_PREFIX + jpeg)
    assert "data URL" in c.signature_problem("data:image/jpeg;base64," + jpeg)
    assert "base64" in c.signature_problem(c.SIGNATURE_PREFIX + "not*base64!")
    assert "base64" in c.signature_problem(c.SIGNATURE_PREFIX + "abc")  # bad padding
    broken = base64.b64encode(c.PNG_MAGIC + b"\x00" * 40).decode()
    assert "cannot be read" in c.signature_problem(c.SIGNATURE_PREFIX + broken)
    assert "data URL" in c.signature_problem("")
