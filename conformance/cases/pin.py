"""PIN: VERIFY and CHANGE PIN on the user card (REFERENCE.md §6 `pin` [choice]).

Applicable when the ICS declares the feature ``pin``. The sample's PIN comes from the ICS
(``sample_pin``, as the vendor declares it); without it the cases are INCONCLUSIVE. Each
case first verifies the declared PIN (a precondition: it also resets the try counter), never
lets the counter fall below 2 tries left (a guard refuses any further PIN guess), and ends by
verifying the sample's PIN again, so the card leaves every case with its PIN and a full
counter. No case blocks the PIN: the sample must never be blocked (the profile has no unblock
command).

The PIN never appears in notes or failure messages; the trace masks VERIFY / CHANGE PIN data.
"""

from __future__ import annotations

from conformance.apdu import ResponseAPDU, sw_hex
from conformance.cases.common import make
from conformance.cases.framework import Case, CaseContext, Inconclusive
from conformance.messages import Msg, msg
from conformance.model import codecs
from conformance.model.codecs import Coding
from conformance.model.profile import CardProfile

CLAUSE = "REFERENCE.md §6 pin [choice]; WS/T 543 (evidence §4.1, §4.7)"
VERIFY_P1P2 = (0x00, 0x00)
CHANGE_P1P2 = (0x01, 0x00)
CHANGE_SEPARATOR = b"\xff"
WRONG, NEW = 1, 2  # digit shifts: a wrong PIN and a new PIN, both unlike the sample's

PIN_CHOICE = (
    "REFERENCE.md §6 makes the user-card PIN a [choice] (the evidence shows VERIFY / CHANGE "
    "PIN only on the SAM): VERIFY <cmd:verify_pin> 00 00 03 <BCD PIN>, 3 tries, "
    "<sw:wrong_cryptogram>, <sw:key_locked> when blocked; "
    "CHANGE PIN <cmd:change_pin> 01 00 Lc old‖FF‖new."
)
CHANGE_WRONG_CHOICE = PIN_CHOICE + (
    " §6 gives no status word for CHANGE PIN with a wrong old PIN; this case expects the "
    "<sw:wrong_cryptogram> family of a wrong VERIFY (ISO/IEC 7816-4 CHANGE REFERENCE DATA)."
)


class _Pin:
    """VERIFY / CHANGE PIN with the try counter tracked from the card's answers, and a guard
    that refuses a PIN command when a wrong guess could leave fewer than ``floor`` tries."""

    def __init__(self, ctx: CaseContext) -> None:
        self.ctx = ctx
        self.tries = ctx.profile.spec.security.pin.tries
        self.length = ctx.profile.spec.security.pin.length_bytes
        self.floor = 1
        self.left: int | None = None
        prefix = ctx.profile.sw_prefix("wrong_cryptogram")
        self.base = int(prefix.ljust(4, "0"), 16)
        self.mask = 0xFFFF ^ ((1 << (4 * (4 - len(prefix)))) - 1)

    def sample(self) -> str:
        secret = self.ctx.product.sample_pin
        if secret is None:
            self.ctx.inconclusive(msg("pin.no_sample"))
        assert secret is not None
        return secret.get_secret_value()

    def bcd(self, pin: str) -> bytes:
        return codecs.encode(Coding.CN, pin, self.length)

    def wrong_sw(self, left: int) -> int:
        return self.base | left

    def tries_left(self, response: ResponseAPDU) -> int | None:
        return response.sw & ~self.mask & 0xFFFF if response.sw & self.mask == self.base else None

    def _guard(self, what: str | Msg) -> None:
        if self.left is not None and self.left - 1 < self.floor:
            raise Inconclusive(msg("pin.guard", what=what, left=self.left),
                               measured=f"{self.left} tries left")

    def _track(self, response: ResponseAPDU, *, verify: bool) -> ResponseAPDU:
        left = self.tries_left(response)
        if left is not None:
            self.left = left
        elif verify and response.sw == self.ctx.sw("ok"):
            self.left = self.tries
        return response

    def verify(self, pin: str, what: str | Msg) -> ResponseAPDU:
        self._guard(what)
        command = self.ctx.apdu("verify_pin", *VERIFY_P1P2, self.bcd(pin))
        return self._track(self.ctx.send(command), verify=True)

    def change(self, old: str, new: str, what: str | Msg) -> ResponseAPDU:
        self._guard(what)
        data = self.bcd(old) + CHANGE_SEPARATOR + self.bcd(new)
        return self._track(self.ctx.send(self.ctx.apdu("change_pin", *CHANGE_P1P2, data)),
                           verify=False)

    def start(self) -> str:
        """The sample PIN, verified (precondition: INCONCLUSIVE if the card refuses it)."""
        pin = self.sample()
        response = self.verify(pin, msg("what.pin.verify_with_the_sample_pin"))
        if response.sw != self.ctx.sw("ok"):
            self.ctx.inconclusive(msg("pin.sample_refused", sw=sw_hex(response.sw)),
                                  expected=sw_hex(self.ctx.sw("ok")),
                                  measured=sw_hex(response.sw))
        return pin

    def expect_wrong(self, response: ResponseAPDU, left: int, what: str | Msg) -> None:
        if response.sw != self.wrong_sw(left):
            self.ctx.fail(msg("pin.expected_wrong", what=what, expected=sw_hex(self.wrong_sw(left)),
                              left=left, sw=sw_hex(response.sw)),
                          expected=sw_hex(self.wrong_sw(left)), measured=sw_hex(response.sw))

    def restore(self, pin: str, maybe: list[str]) -> None:
        """Make the sample PIN current again and its counter full: VERIFY it; if refused,
        CHANGE PIN from each PIN the card may now hold, then VERIFY."""
        ok = self.ctx.sw("ok")
        if self.verify(pin, msg("what.pin.verify_restoring")).sw == ok:
            return
        for old in maybe:
            changed = self.change(old, pin, msg("what.pin.change_pin_restoring")).sw == ok
            if changed and self.verify(pin, msg("what.pin.verify_restoring")).sw == ok:
                return
        self.ctx.fail(msg("pin.not_restored"))


def shifted(pin: str, k: int) -> str:
    """The PIN with every digit shifted by k (mod 10): as long, and different in every digit."""
    return "".join(str((int(d) + k) % 10) for d in pin)


def cases(profile: CardProfile) -> list[Case]:
    out: list[Case] = []
    tries = profile.spec.security.pin.tries
    pre = ("card reset; the ICS gives the sample PIN; VERIFY with it answers <sw:ok>; it is "
           "verified again at the end (try counter full)")

    @make(
        out, "PIN-VERIFY-001", "PIN",
        "PIN 校验：正确、错误与重试计数恢复",
        "VERIFY: right PIN, wrong PIN with tries left, counter restored",
        CLAUSE,
        f"VERIFY with a wrong PIN answers <sw:wrong_cryptogram:{tries - 1:X}> ({tries - 1} of "
        f"{tries} tries "
        "left), VERIFY with the right PIN then answers <sw:ok> and restores the counter (a "
        f"second wrong PIN answers <sw:wrong_cryptogram:{tries - 1:X}> again).",
        purpose_zh=f"以错误的 PIN 校验应答 <sw:wrong_cryptogram:{tries - 1:X}>（{tries} 次中剩余 "
                   f"{tries - 1}"
                   " 次），随后以正确的 PIN 校验应答 <sw:ok> 并恢复计数（再次以错误的 PIN 校验仍"
                   "应答 <sw:wrong_crypt"
                   f"ogram:{tries - 1:X}>）。",
        applicability="pin", preconditions=pre, severity="critical",
        expected_sw=("ok", f"wrong_cryptogram:{tries - 1:X}"), reference_choice=PIN_CHOICE,
    )
    def verify(ctx: CaseContext) -> None:
        p = _Pin(ctx)
        pin = p.start()
        wrong = shifted(pin, WRONG)
        with ctx.restoring(msg("what.pin.the_sample_pin"), lambda: p.restore(pin, [])):
            p.expect_wrong(p.verify(wrong, msg("what.pin.verify_wrong_pin")), p.tries - 1,
                           msg("what.pin.verify_with_a_wrong_pin"))
            ctx.expect_sw(p.verify(pin, msg("what.pin.verify",
                                            )), "ok", what=msg("what.pin.verify_with_the_right_pin",
                                                               ))
            p.expect_wrong(p.verify(wrong, msg("what.pin.verify_wrong_pin")), p.tries - 1,
                           msg("what.pin.verify_with_a_wrong_pin_2"))

    @make(
        out, "PIN-CHANGE-001", "PIN",
        "修改 PIN 后新 PIN 生效",
        "CHANGE PIN: the new PIN verifies, the old one no longer does",
        CLAUSE,
        "CHANGE PIN <cmd:change_pin> 01 00 old‖FF‖new answers <sw:ok>; VERIFY with the new PIN "
        "answers "
        f"<sw:ok> and with the old one <sw:wrong_cryptogram:{tries - 1:X}>; the PIN is changed "
        "back afterwards.",
        purpose_zh="修改 PIN <cmd:change_pin> 01 00 旧‖FF‖新 应答 <sw:ok>；以新 PIN 校验应答 <sw:ok"
                   f">，以旧 PIN 校验应答 <sw:wrong_cryptogram:{tries - 1:X}>；之后 PIN 被改回。",
        applicability="pin", preconditions=pre + "; the PIN is changed back at the end",
        severity="critical", expected_sw=("ok", f"wrong_cryptogram:{tries - 1:X}"),
        reference_choice=PIN_CHOICE,
    )
    def change(ctx: CaseContext) -> None:
        p = _Pin(ctx)
        pin = p.start()
        new = shifted(pin, NEW)
        with ctx.restoring(msg("what.pin.the_sample_pin"), lambda: p.restore(pin, [new])):
            ctx.expect_sw(p.change(pin, new, msg("what.pin.change_pin")), "ok",
                          what=msg("what.pin.change_pin_from_the_sample"))
            ctx.expect_sw(p.verify(new, msg("what.pin.verify_new_pin")), "ok",
                          what=msg("what.pin.verify_with_the_new_pin"))
            p.expect_wrong(p.verify(pin, msg("what.pin.verify_old_pin")), p.tries - 1,
                           msg("what.pin.verify_with_the_old_pin"))
            ctx.expect_sw(p.verify(new, msg("what.pin.verify_new_pin")), "ok",
                          what=msg("what.pin.verify_with_the_new_pin_2"))
            ctx.expect_sw(p.change(new, pin, msg("what.pin.change_pin_back")), "ok",
                          what=msg("what.pin.change_pin_from_the_new"))

    @make(
        out, "PIN-CHANGE-002", "PIN",
        "旧 PIN 错误时修改 PIN 被拒绝",
        "CHANGE PIN with a wrong old PIN is refused",
        CLAUSE,
        "CHANGE PIN with a wrong old PIN answers <sw:wrong_cryptogram> and leaves the PIN "
        "unchanged (VERIFY "
        "with the sample PIN still answers <sw:ok>).",
        purpose_zh="以错误的旧 PIN 修改 PIN 应答 <sw:wrong_cryptogram>，PIN 不变（以样品 PIN 校验"
                   "仍应答 <sw"
                   ":ok>）。",
        applicability="pin", preconditions=pre, severity="critical",
        expected_sw=("wrong_cryptogram", "ok"), reference_choice=CHANGE_WRONG_CHOICE,
    )
    def change_wrong_old(ctx: CaseContext) -> None:
        p = _Pin(ctx)
        pin = p.start()
        wrong, new = shifted(pin, WRONG), shifted(pin, NEW)
        with ctx.restoring(msg("what.pin.the_sample_pin"), lambda: p.restore(pin, [new])):
            ctx.expect_sw(p.change(wrong, new, msg("what.pin.change_pin_wrong_old_pin",
                                                   )), "wrong_cryptogram",
                          what=msg("what.pin.change_pin_with_a_wrong"))
            ctx.expect_sw(p.verify(pin, msg("what.pin.verify")), "ok",
                          what=msg("what.pin.verify_with_the_sample_pin_2"))

    return out
