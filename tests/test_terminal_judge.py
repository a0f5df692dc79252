"""The trace judge on APDUs sent straight to a recording test card (no terminal program):
each rule fires on the exchange that breaks it, and a clean exchange gives no finding."""

from __future__ import annotations

import pytest

from conformance import crypto
from conformance.model import load_profile
from conformance.terminal.cards import ServedCard, load_test_card
from conformance.terminal.judge import judge_trace

PROFILE = load_profile()


class Sender:
    """Raw APDUs to a served test card, with the card's own keys for authentication."""

    def __init__(self, card_name: str) -> None:
        self.card = load_test_card(card_name).build(PROFILE)
        self.served = ServedCard(self.card, load_test_card(card_name).behaviour)
        self.served.reset()

    def send(self, hexa: str) -> bytes:
        return self.served.process(bytes.fromhex(hexa))

    def select(self, *fids: str) -> None:
        for fid in fids:
            assert self.send(f"00A4000002{fid}")[-2:] == b"\x90\x00"

    def authenticate(self, family: str, kid: int) -> None:
        r = self.send("0084000008")[:-2]
        c = crypto.auth_cryptogram(crypto.session_key(self.card.content.card_keys[family], r), r)
        assert self.send(f"008200{kid:02X}11{(c + r).hex()}01")[-2:] == b"\x90\x00"

    def rules(self) -> list[str]:
        return [f.rule for f in judge_trace(PROFILE, self.card.content, self.served.trace)]


def test_a_clean_read_gives_no_finding() -> None:
    s = Sender("normal")
    s.select("DDF1", "EF05")
    s.send("00B2010400")
    assert s.rules() == []


def test_index_must_be_marked_before_an_ee_write() -> None:
    s = Sender("index-empty")
    s.select("DDF1", "DF03")
    s.authenticate("UK_DF03_1", 0x85)
    s.select("EE01")
    s.send("00D6000004" + "41424344")
    assert s.rules() == ["index_before_write"]


def test_marked_then_written_inside_the_layout_is_clean_and_past_the_end_is_not() -> None:
    s = Sender("index-empty")
    s.select("DDF1", "DF03")
    s.authenticate("UK_DF03_1", 0x85)
    s.select("EF05")
    s.send("84D2010400")
    s.select("EE01")
    s.send("00D6000004" + "41424344")
    assert s.rules() == []
    s.send("00D6076204" + "41424344")  # offset 1890 + 4 bytes > 1893
    assert "inside_layout" in s.rules()


def test_6cxx_must_be_followed_by_the_corrected_le() -> None:
    s = Sender("t0")
    s.select("DDF1", "EF05")
    assert s.send("00B2010400")[0] == 0x6C
    s.send("00B2020400")
    assert "corrected_le" in s.rules()


@pytest.mark.parametrize(("kid", "rule"), [(0x99, "right_key")])
def test_a_kid_of_no_key_of_the_current_df(kid: int, rule: str) -> None:
    s = Sender("normal")
    s.select("DDF1")
    s.send("0084000008")
    s.send(f"008200{kid:02X}11" + "00" * 16 + "01")
    assert rule in s.rules()


def test_the_terminal_stops_on_an_unexpected_status_word() -> None:
    s = Sender("normal")
    s.select("DDF1")
    assert s.send("00A40000020BAD")[-2:] == b"\x6a\x82"
    s.send("00A4000002EF05")
    assert s.rules() == ["stop_on_error"]


def test_an_sm_update_with_a_wrong_mac_is_not_built_per_section_4() -> None:
    s = Sender("normal")
    s.select("DDF1")
    s.authenticate("UK_DDF1", 0x05)
    s.select("EF08")
    r = s.send("0084000008")[:-2]
    sk = crypto.session_key(s.card.content.card_keys["STK_DDF1"], r)
    apdu = bytearray(crypto.sm_wrap_update(sk, 2, PROFILE.tlv(16, "13912345678"),
                                           command=(0x04, 0xDC)))
    apdu[-1] ^= 0xFF
    s.send(apdu.hex())
    assert s.rules()[:1] == ["sm_per_spec"]


def test_a_61xx_left_uncollected_before_a_reset_is_found() -> None:
    s = Sender("t0")
    s.select("DDF1", "EF05")
    assert s.send("00B2010403")[0] == 0x61
    s.served.reset()  # the terminal disconnects with a reset
    assert s.rules() == ["get_response"]
