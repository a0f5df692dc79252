"""ATR: the answer to reset and the card-number factor it carries (REFERENCE.md §2)."""

from __future__ import annotations

from conformance.cases.common import make
from conformance.cases.framework import Case, CaseContext
from conformance.messages import msg
from conformance.model.profile import CardProfile
from conformance.model.schema import AtrField

CLAUSE = "REFERENCE.md §2; WS/T 543.4 §4 (evidence §4.5)"
CHOICE = "The historical-byte layout is a reference-profile choice following evidence §4.5."
FACTOR_CHOICE = (
    "That ATR bytes 5–12 are the card-number factor is REFERENCE.md §2 [choice]; the key "
    "diversification that uses it is REFERENCE.md §4 [choice, following evidence §4.3–4.5]."
)


ATR_CHOICE = "atr"
"""REFERENCE.md §2: the ATR is a [choice, following evidence §4.5] (profile choices.atr)."""


def _parts(ctx: CaseContext) -> tuple[bytes, bytes, bytes]:
    """(TS‖T0, interface bytes, historical bytes) of the card's ATR per the profile's T0."""
    atr = ctx.session.atr
    spec = ctx.profile.spec.atr
    n_iface = len(bytes.fromhex(spec.interface_bytes))
    return atr[:2], atr[2 : 2 + n_iface], atr[2 + n_iface :]


def _offsets(fields: list[AtrField]) -> list[tuple[int, AtrField]]:
    """Each historical field with its offset inside the historical bytes."""
    out, offset = [], 0
    for field in fields:
        out.append((offset, field))
        offset += field.length
    return out


def cases(profile: CardProfile) -> list[Case]:
    out: list[Case] = []
    spec = profile.spec.atr
    head = bytes([spec.ts, spec.t0]) + bytes.fromhex(spec.interface_bytes)
    presence = zip((0x10, 0x20, 0x40, 0x80), "ABCD", strict=True)
    iface_names = [f"T{c}1" for bit, c in presence if spec.t0 & bit]
    iface_hex = " ".join(f"{b:02X}" for b in bytes.fromhex(spec.interface_bytes))
    atr_choice = (
        f"The whole ATR ({head.hex(' ').upper()} ‖ {spec.historical_length} historical bytes) "
        "is a REFERENCE.md §2 [choice], following evidence §4.5."
    )

    @make(
        out,
        "ATR-001",
        "ATR",
        "复位应答起始字符",
        "Initial character TS",
        CLAUSE + "; ISO/IEC 7816-3 §8.1",
        f"TS is {spec.ts:02X} (direct convention).",
        purpose_zh=f"TS 为 {spec.ts:02X}（正向约定）。",
        expected_sw=(),
        reference_choice=atr_choice,
        severity="blocker",
    )
    def ts(ctx: CaseContext) -> None:
        atr = ctx.session.atr
        ctx.check(len(atr) >= 2, msg("atr.too_short", atr=atr.hex().upper(), length=len(atr)),
                  expected="≥ 2 bytes", measured=f"{len(atr)} bytes")
        ctx.check(atr[0] == spec.ts,
                  msg("atr.byte", name="TS", got=f"{atr[0]:02X}", expected=f"{spec.ts:02X}"),
                  expected=f"{spec.ts:02X}", measured=f"{atr[0]:02X}",
                  choice=ATR_CHOICE)

    @make(
        out,
        "ATR-002",
        "ATR",
        "格式字符与历史字节数",
        "Format byte T0 and historical bytes",
        CLAUSE + "; ISO/IEC 7816-3 §8.2",
        "T0 announces the interface bytes present and the number of historical bytes, "
        "and the ATR has exactly that many bytes (no TCK for T=0 only).",
        purpose_zh="T0 声明所含的接口字节和历史字节数，ATR 的字节数与之完全一致（仅 T=0 时无 TCK"
                   "）。",
        reference_choice=atr_choice,
        severity="critical",
    )
    def t0(ctx: CaseContext) -> None:
        atr = ctx.session.atr
        ctx.check(len(atr) >= 2, msg("atr.too_short", atr=atr.hex().upper(), length=len(atr)),
                  expected="≥ 2 bytes", measured=f"{len(atr)} bytes")
        y1, k = atr[1] >> 4, atr[1] & 0x0F
        n_iface = bin(y1).count("1")
        if y1 & 0x8:
            ctx.fail(msg("atr.td1", t0=f"{atr[1]:02X}"), choice=ATR_CHOICE,
                     expected="T=0 only", measured=f"T0 {atr[1]:02X}")
        ctx.check(
            k == spec.historical_length,
            msg("atr.historical_count", k=k, expected=spec.historical_length),
            choice=ATR_CHOICE, expected=spec.historical_length, measured=k,
        )
        ctx.check(
            len(atr) == 2 + n_iface + k,
            msg("atr.length", length=len(atr), expected=2 + n_iface + k),
            expected=f"{2 + n_iface + k} bytes", measured=f"{len(atr)} bytes",
        )

    @make(
        out,
        "ATR-003",
        "ATR",
        "接口字符",
        "Interface bytes",
        CLAUSE,
        f"The interface bytes are those of the profile ({' '.join(iface_names)} = {iface_hex}).",
        purpose_zh=f"接口字节为配置规定的值（{' '.join(iface_names)} = {iface_hex}）。",
        reference_choice=f"Interface bytes {iface_hex} ({', '.join(iface_names)}) are a "
        "reference-profile choice.",
        severity="minor",
    )
    def iface(ctx: CaseContext) -> None:
        head, found, _ = _parts(ctx)
        ctx.check(head[1] == spec.t0,
                  msg("atr.byte", name="T0", got=f"{head[1]:02X}", expected=f"{spec.t0:02X}"),
                  expected=f"{spec.t0:02X}", measured=f"{head[1]:02X}",
                  choice=ATR_CHOICE)
        ctx.check(
            found.hex().upper() == spec.interface_bytes,
            msg("atr.interface", got=found.hex().upper(), expected=spec.interface_bytes),
            choice=ATR_CHOICE, expected=spec.interface_bytes, measured=found.hex().upper(),
        )

    fixed = [(start, f) for start, f in _offsets(spec.historical) if f.value]
    described = ", ".join(f"{f.name} = {f.value}" for _, f in fixed)

    @make(
        out,
        "ATR-004",
        "ATR",
        "历史字节固定字段",
        "Fixed fields of the historical bytes",
        CLAUSE,
        f"The historical bytes carry the profile's fixed fields: {described}.",
        purpose_zh=f"历史字节含配置规定的固定字段：{described}。",
        reference_choice=CHOICE,
        severity="normal",
    )
    def fixed_fields(ctx: CaseContext) -> None:
        _, _, hist = _parts(ctx)
        for start, field in fixed:
            found = hist[start : start + field.length].hex().upper()
            ctx.check(
                found == field.value,
                msg("atr.historical_field", name=field.name, got=found or "—",
                    expected=field.value),
                choice=ATR_CHOICE, expected=field.value, measured=found or "—",
            )

    @make(
        out,
        "ATR-005",
        "ATR",
        "卡号分散因子",
        "Card-number factor in the ATR",
        CLAUSE + "; evidence §4.5 (CardNo = ATR bytes 5..12)",
        "The card-number factor (ATR bytes 5..12) is the diversification factor: the read "
        "key of DDF1 derived from it is accepted.",
        purpose_zh="卡号分散因子（ATR 第 5..12 字节）即密钥分散因子：以其分散的 DDF1 读密钥被接受"
                   "。",
        expected_sw=("ok",),
        reference_choice=FACTOR_CHOICE,
        severity="blocker",
    )
    def factor(ctx: CaseContext) -> None:
        ctx.check(
            len(ctx.session.atr)
            >= spec.card_number_factor.atr_offset + spec.card_number_factor.length,
            msg("atr.factor_short", length=len(ctx.session.atr),
                expected=spec.card_number_factor.atr_offset + spec.card_number_factor.length),
            expected=f"≥ {spec.card_number_factor.atr_offset + spec.card_number_factor.length}"
            " bytes", measured=f"{len(ctx.session.atr)} bytes",
        )
        read_key = next(
            name for name, k in ctx.profile.keys.items() if k.df == "DDF1" and k.use == "read"
        )
        with ctx.precondition(msg("act.city_code_and_ddf1")):
            ctx.session.city_code_factor  # noqa: B018 - level-2 keys need it first
            ctx.session.select("DDF1")
        with ctx.expecting(msg("act.auth_by_atr_factor", key=read_key)):
            ctx.session.authenticate(read_key)

    @make(
        out,
        "ATR-006",
        "ATR",
        "复位应答稳定",
        "ATR stable across resets",
        CLAUSE,
        "Every reset gives the same ATR (the factor may not change between sessions).",
        purpose_zh="每次复位得到相同的 ATR（分散因子在不同会话之间不得改变）。",
        reference_choice=f"{atr_choice} {FACTOR_CHOICE}",
        severity="normal",
    )
    def stable(ctx: CaseContext) -> None:
        first = ctx.session.atr
        again = ctx.trace.reset()
        ctx.session.reset()
        ctx.check(
            again == first,
            msg("atr.changed", first=first.hex().upper(), again=again.hex().upper()),
            expected=first.hex().upper(), measured=again.hex().upper(),
        )

    return out
