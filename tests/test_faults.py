"""The defect catalogue: every fault is a visible deviation on the card's APDU interface.

A fixed battery of probes (each a short sequence a conformance case could send, following
REFERENCE.md) runs against the reference card and against a card carrying one fault; the
observations (status words, data read back, ATR) must differ. Challenges and cryptograms
are random, so the battery records only what is deterministic on a conforming card.
"""

from __future__ import annotations

import fnmatch
import functools
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from card_terminal import Terminal, h

from conformance import crypto
from conformance.card import FAULTS, GROUPS, Fault, FaultSet, VirtualCard, check_fault_names
from conformance.card.faults import AccessOverride, LayoutChange, RecordPatch
from conformance.model import (
    DEFAULT_PERSONALIZATION,
    DEFAULT_TEST_KEYS,
    CardProfile,
    KeySet,
    Personalization,
    Structure,
    load_key_set,
    load_personalization,
    load_profile,
)
from conformance.model.application import load_application, sfi_p2

Observation = list[object]
Probe = Callable[[Terminal], Observation]


@functools.cache
def _model() -> tuple[CardProfile, Personalization, KeySet]:
    profile = load_profile()
    return (profile, load_personalization(DEFAULT_PERSONALIZATION, profile),
            load_key_set(DEFAULT_TEST_KEYS, profile))


# ============================================================================ the battery


def p_atr(t: Terminal) -> Observation:
    return [t.atr]


def p_select(t: Terminal) -> Observation:
    out: Observation = [t.select_path(path) for path in (*t.profile.dfs, *t.profile.files)]
    t.select_path("DDF1")
    out += [t.select("EE01"), t.select("ABCD"), t.sw("00A4000C02DDF1")]
    return out


def p_syntax(t: Terminal) -> Observation:
    t.select_path("DDF1")
    out: Observation = [t.sw("00FE0000"), t.sw("A0A4000002DDF1"), t.sw("00A4040002DDF1"),
                        t.sw("0084000004"), t.sw("00B2010400"), t.sw("00A4000001DD"),
                        t.sw("0082000410" + "00" * 16)]
    t.select_path("DDF1/EF05")
    out += [t.sw("84B2010400"), t.sw("00B20104000000"), t.sw("00A40000000002EF05")]
    return out


def p_free_file(t: Terminal) -> Observation:
    t.select_path("DDF1/EF05")
    out: Observation = [t.read_record(n) for n in range(1, 12)]
    out += [t.read_record(tag, p2=0x00) for tag in t.profile.file("DDF1/EF05").items]
    out += [t.read_record(1, 5), t.read_binary(0)]
    return out


def _read_file(t: Terminal, path: str) -> Observation:
    ef = t.profile.file(path)
    out: Observation = [t.select_path(path)]
    if ef.access.read != "free":
        out.append(t.authenticate(ef.access.read))
    if ef.structure is Structure.TRANSPARENT:
        size = ef.size or 0
        out += [t.read_binary(offset) for offset in range(0, size + 1, 256)]
        out.append(t.read_binary(size, 1))
    else:
        out += [t.read_record(n) for n in range(1, t.profile.record_count(path) + 2)]
    return out


def p_read_all(t: Terminal) -> Observation:
    out: Observation = []
    for path in t.profile.files:
        out += _read_file(t, path)
        t.reset()
    return out


def p_read_rights(t: Terminal) -> Observation:
    out: Observation = []
    for path, ef in t.profile.files.items():
        if ef.access.read != "free":
            t.select_path(path)
            out.append(t.read_record(1)[1] if ef.structure is not Structure.TRANSPARENT
                       else t.read_binary(0, 1)[1])
    t.reset()
    t.select_path("DDF1")
    out.append(t.authenticate("RK_DDF1"))
    t.select("DF01")
    t.select("EF05")
    out.append(t.read_record(1)[1])                     # a DDF1 right in DF01
    t.select("DDF1")
    t.select("EF06")
    out.append(t.read_record(1)[1])                     # back in DDF1 after a DF change
    t.reset()
    t.select_path("DDF1")
    out.append(t.authenticate("RK_DDF1"))
    t.reset()
    t.select_path("DDF1/EF06")
    out.append(t.read_record(1)[1])                     # after a reset
    t.reset()
    t.select_path("DDF1/EF06")
    out.append(t.authenticate("UK_DDF1"))
    out.append(t.read_record(1)[1])                     # update right only
    return out


def p_counters(t: Terminal) -> Observation:
    t.select_path("DDF1/EF06")
    out: Observation = [t.authenticate("RK_DDF1", wrong=True),
                        t.authenticate("RK_DDF1", wrong=True), t.authenticate("RK_DDF1"),
                        t.authenticate("RK_DDF1", wrong=True), t.authenticate("RK_DDF1")]
    out += [t.read_record(1)[1], t.authenticate("RK_DDF1", wrong=True), t.read_record(1)[1],
            t.authenticate("RK_DDF1"), t.authenticate("RK_DDF1", trailer=0x02)]
    return out


def p_challenge(t: Terminal) -> Observation:
    t.select_path("DDF1")
    out: Observation = [len({t.challenge() for _ in range(8)})]
    r = t.challenge()
    out += [t.authenticate("RK_DDF1", challenge=r), t.authenticate("RK_DDF1", challenge=r)]
    r = t.challenge()
    t.reset()
    t.select_path("DDF1")
    out.append(t.authenticate("RK_DDF1", challenge=r))
    return out


def p_secure_messaging(t: Terminal) -> Observation:
    p = t.profile
    t.select_path("DDF1/EF08")
    out: Observation = [t.sm_update("DDF1", 2, p.tlv(16, "13700000000"))]   # no update right
    out.append(t.authenticate("UK_DDF1"))
    out.append(t.sm_update("DDF1", 2, p.tlv(16, "13711111111"), bad_mac=True))
    out.append(t.update_record(3, p.tlv(17, "13722222222")))               # plain on TLV
    out.append(t.authenticate("RK_DDF1"))
    out += [t.read_record(n) for n in (2, 3)]
    t.select_path("DF02/EF06")
    out.append(t.authenticate("UK_DF02_1"))
    out.append(t.sm_update("DF02", 1, p.tlv(56, "01")))
    return out


def p_item57(t: Terminal) -> Observation:
    t.select_path("DDF1/EF05")
    out: Observation = [t.authenticate("UK_DDF1"),
                        t.sm_update("DDF1", 10, t.profile.tlv(57, "440300"))]
    t.select_path("DF02")
    out.append(t.authenticate("RK_DF02"))            # still the personalization's city code
    return out


def p_cyclic(t: Terminal) -> Observation:
    p = t.profile
    out: Observation = []
    for path, (a, b) in (("DF02/EF07", (58, 59)), ("DF02/EF08", (60, 61))):
        t.select_path(path)
        out += [t.authenticate("UK_DF02_3"), t.authenticate("RK_DF02")]
        for i in range(4):
            value_b = f"反应{i}" if p.item(b).coding == "AN" else f"2024010{i}"
            out.append(t.update_record(0, p.encode_item(a, f"记录{i}") + p.encode_item(b, value_b),
                                       p2=0x03))
        out += [t.read_record(n) for n in range(1, p.record_count(path) + 1)]
        out.append(t.update_record(2, t.read_record(3)[0]))          # P2 = 04 in place
        out += [t.read_record(n) for n in range(1, p.record_count(path) + 1)]
    return out


def p_index(t: Terminal) -> Observation:
    t.select_path("DF03/EF05")
    out: Observation = [t.authenticate("UK_DF03_1"), t.authenticate("RK_DF03"),
                        t.mark(1), t.read_record(1), t.mark(2, erase=True), t.read_record(2)]
    out.append(t.sw("84D2030401FF"))                  # mark with a data field
    out += [t.update_record(3, b"\x00"), t.read_record(3)]   # plain update of an index
    t.reset()
    t.select_path("DF03/EF05")
    out += [t.authenticate("UK_DF03_2"), t.authenticate("RK_DF03"), t.mark(3),
            t.mark(1, erase=True), t.read_record(1), t.read_record(3)]
    return out


def p_records(t: Terminal) -> Observation:
    out: Observation = []
    for path in ("DF03/EE01", "DF03/ED01"):
        t.select_path(path)
        out += [t.authenticate("UK_DF03_1"), t.authenticate("RK_DF03")]
        sig = next(f for f in t.profile.layout(t.profile.file(path).layout or "")
                   if f.role == "signature")
        for offset, data in ((100, h("010203")), (1100, h("040506")),
                             (sig.offset, bytes(range(sig.length)))):
            out.append(t.update_binary(offset, data))
            out.append(t.read_binary(offset, len(data)))
        out.append(t.read_binary(0, 3))
        size = t.profile.file(path).size or 0
        out += [t.update_binary(size - 2, h("AABBCC")), t.read_binary(size - 2, 2)]
        t.reset()
        t.select_path(path)
        out += [t.authenticate("RK_DF03"), t.update_binary(200, h("0102")),
                t.read_binary(200, 2)]
    return out


def p_pin(t: Terminal) -> Observation:
    if "pin" not in getattr(t.card, "features", frozenset()):
        return []
    pin = _model()[1].pin or ""
    return [t.sw("0020000003999999"), t.sw("0020000003999999"), t.sw("0020000003" + pin),
            t.sw("805E010007" + "999999FF" + "111111"),
            t.sw("805E010007" + pin + "FF" + "222222"),
            t.sw("0020000003" + pin), t.sw("0020000003222222"),
            *(t.sw("0020000003999999") for _ in range(3)), t.sw("0020000003222222")]


def p_lock(t: Terminal) -> Observation:
    t.select_path("DF03")
    out: Observation = [t.authenticate("UK_DF03_2", wrong=True) for _ in range(15)]
    out.append(t.authenticate("UK_DF03_2"))
    return out


def p_sec_state(t: Terminal) -> Observation:
    """Challenge kept across SELECT, rights kept when the DF is selected again, KIDs found in
    the current DF only, SM updates written and their TLV checked (added with the SEC cases)."""
    p = t.profile
    t.select_path("DDF1")
    r = t.challenge()
    t.select("EF05")
    out: Observation = [t.authenticate("RK_DDF1", challenge=r)]   # challenge kept by SELECT
    t.select("DDF1")
    t.select("EF06")
    out.append(t.read_record(1)[1])                               # right kept: same DF again
    other = "UK_DF02_3"                                           # KID 87: not a DDF1 key
    r, x = t.challenge(), bytes(range(1, 9))
    c = crypto.auth_cryptogram(crypto.session_key(t.card_key(other), r.ljust(8, b"\0")), x)
    out.append(t.sw(t.ext_auth_apdu(p.key(other).kid or 0, c, x)))
    out.append(t.authenticate("UK_DDF1"))
    t.select("EF08")
    out.append(t.sm_update("DDF1", 2, p.tlv(16, "13733333333")))
    out.append(t.sm_update("DDF1", 3, p.tlv(16, "13744444444")))  # item 16's TLV in record 3
    out += [t.read_record(n) for n in (2, 3)]
    return out


def p_update_rights(t: Terminal) -> Observation:
    """Every EF with an update right, written with no right at all (last: it may write)."""
    p = t.profile
    out: Observation = []
    for path, ef in p.files.items():
        if ef.access.update in (None, "free"):
            continue
        t.reset()
        t.select_path(path)
        df = path.partition("/")[0]
        if ef.structure is Structure.TLV_RECORDS:
            out.append(t.sm_update(df, 1, p.tlv(ef.items[0], "")))
        elif ef.structure is Structure.TRANSPARENT:
            out.append(t.update_binary(0, b"\x00"))
        else:
            out.append(t.update_record(1, bytes(ef.record_length or 1)))
    return out


def p_timing(t: Terminal) -> Observation:
    """Whether the card is slow: the fastest of three SELECTs takes 30 ms or more (the
    reference card answers in well under a millisecond, the slow-card fault in 60 ms)."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        t.sw("00A4000002DDF1")
        times.append(time.perf_counter() - start)
    return [min(times) >= 0.030]


def p_co_branded(t: Terminal) -> Observation:
    """Feature co_branded: the other application (PSE, directory, ADF) and its state around
    health selects, authentications and writes, and health keys used in its ADF."""
    app = load_application("pboc-pse")
    sfi = app.protected_files[0].sfi

    def select_name(name: bytes) -> bytes:
        return t.send(bytes([0x00, 0xA4, 0x04, 0x00, len(name)]) + name + b"\x00")

    def adf_state() -> Observation:
        out: Observation = [select_name(app.aid)]
        out += [t.send(bytes([0x00, 0xB2, n, sfi_p2(f.sfi), 0x00]))
                for f in app.adf.files for n in range(1, len(f.records) + 1)]
        return [*out, t.send("80CA9F3600")]

    out: Observation = [select_name(app.pse_name), t.send("00B2010C00"), *adf_state()]
    protected = t.send(bytes([0x00, 0xB2, 0x01, sfi_p2(sfi), 0x00]))[:-2]
    out += [t.select("DDF1"), *adf_state()]
    t.select_path("DDF1/EF05")
    out.append(t.authenticate("UK_DDF1"))
    record = t.read_record(1)[0]
    out += [t.sm_update("DDF1", 1, record), *adf_state()]
    uk = t.profile.key("UK_DDF1").kid
    assert uk is not None
    challenge, x = t.challenge(), bytes(8)
    cryptogram = crypto.auth_cryptogram(
        crypto.session_key(t.card_key("UK_DDF1"), (challenge + bytes(8))[:8]), x)
    out.append(t.sw(t.ext_auth_apdu(uk, cryptogram, x)))
    t.select_path("DDF1")
    out.append(t.authenticate("UK_DDF1"))
    select_name(app.aid)
    out.append(t.sw(bytes([0x00, 0xDC, 0x01, sfi_p2(sfi), len(protected)]) + protected))
    challenge = t.challenge()
    out.append(t.sw(t.sm_apdu("DDF1", 1, protected, challenge=(challenge + bytes(8))[:8])))
    return [*out, *adf_state()]


BATTERY: list[Probe] = [p_atr, p_timing, p_select, p_syntax, p_free_file, p_read_all, p_read_rights,
                        p_counters, p_challenge, p_secure_messaging, p_item57, p_cyclic,
                        p_index, p_records, p_pin, p_lock, p_sec_state, p_update_rights,
                        p_co_branded]


def run_battery(faults: frozenset[str] = frozenset(),
                features: frozenset[str] = frozenset()) -> dict[str, Observation]:
    """The observations of every probe on a fresh card (reset between probes)."""
    profile, pers, keys = _model()
    card = VirtualCard.personalize(profile, pers, keys, features=features, faults=faults)
    t = Terminal(card, profile, keys, get_response="t0_get_response" in features)
    out: dict[str, Observation] = {}
    for probe in BATTERY:
        t.reset()
        out[probe.__name__] = probe(t)
        assert card.last_error is None, f"{probe.__name__}: {card.last_error!r}"
    return out


@functools.cache
def reference(features: frozenset[str]) -> dict[str, Observation]:
    return run_battery(features=features)


def _features(fault: Fault) -> frozenset[str]:
    return frozenset({fault.requires}) if fault.requires else frozenset()


# ============================================================================ tests


def test_battery_is_deterministic_on_the_reference_card() -> None:
    for features in (frozenset(), frozenset({"pin"}), frozenset({"t0_get_response"})):
        assert run_battery(features=features) == reference(features)


def test_battery_runs_clean_on_the_reference_card() -> None:
    """On the reference card the probes see what REFERENCE.md says (spot checks)."""
    ref = reference(frozenset({"pin"}))
    assert ref["p_counters"] == [0x63CE, 0x63CD, 0x9000, 0x63CE, 0x9000,
                                 0x9000, 0x63CE, 0x9000, 0x9000, 0x6A80]
    assert ref["p_challenge"] == [8, 0x9000, 0x6985, 0x6985]
    assert ref["p_lock"][-2:] == [0x63C0, 0x6983]
    assert ref["p_pin"][:3] == [0x63C2, 0x63C1, 0x9000]


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_fault_is_observable(name: str) -> None:
    fault = FAULTS[name]
    features = _features(fault)
    faulty = run_battery(frozenset({name}), features)
    ref = reference(features)
    differing = [probe for probe in ref if faulty[probe] != ref[probe]]
    assert differing, f"fault {name} ({fault.description_en}) changes nothing the battery sees"


def test_catalogue_is_well_formed() -> None:
    assert len(FAULTS) >= 35
    assert {f.group for f in FAULTS.values()} == set(GROUPS)
    for name, fault in FAULTS.items():
        assert fault.name == name
        assert fault.description_en and fault.description_zh and fault.reference
        assert fault.requires is None or fault.requires in _model()[0].spec.features


def _card_source() -> str:
    import conformance.card as card_pkg

    return "".join(p.read_text(encoding="utf-8")
                   for p in Path(card_pkg.__file__).parent.glob("*.py")
                   if p.name not in ("faults.py", "defects.py", "generated.py"))


def test_every_hook_fault_has_a_hook_in_the_card() -> None:
    """A hook fault the card never asks about would be a dead catalogue entry."""
    source = _card_source()
    missing = [name for name, f in FAULTS.items() if f.kind == "hook" and f'"{name}"' not in source]
    assert not missing


def test_declared_faults_are_applied_from_their_data_only() -> None:
    """A fault with a deviation has no branch of its own: the card applies the data."""
    source = _card_source()
    branched = [name for name, f in FAULTS.items() if f.kind != "hook" and f'"{name}"' in source]
    assert not branched


def test_every_fault_aims_at_cases_of_the_catalogue() -> None:
    """An aim is a promise that those cases catch the fault: each pattern names real cases."""
    from conformance.cases.catalogue import build_catalogue

    ids = [c.id for c in build_catalogue(_model()[0])]
    empty = {name: pattern for name, f in FAULTS.items() for pattern in f.aim
             if not any(fnmatch.fnmatchcase(i, pattern) for i in ids)}
    assert not empty, empty


def test_generated_faults_cover_the_profile() -> None:
    """One TLV-length and one coding fault per TLV item, a record-count or size and a
    structure fault per EF, a read fault per protected EF (or a hand-written equivalent)."""
    profile = _model()[0]
    deviations = {f.deviation for f in FAULTS.values() if f.deviation is not None}
    for number in profile.tlv_items():
        assert f"data_coding_{number:03d}" in FAULTS
        place = profile.place(number)
        length = profile.item(number).length
        assert RecordPatch(place.path, place.record or 0, offset=1,
                           data=f"{length - 1:02X}") in deviations, number
    for path, ef in profile.files.items():
        other = (Structure.LINEAR_FIXED if ef.structure is Structure.TRANSPARENT
                 else Structure.TRANSPARENT)
        assert LayoutChange(path, structure=other) in deviations, path
        shape = (LayoutChange(path, size=(ef.size or 0) - 1)
                 if ef.structure is Structure.TRANSPARENT
                 else LayoutChange(path, records=profile.record_count(path) - 1))
        assert shape in deviations, path
        if ef.access.read != "free":
            assert AccessOverride(path, "read", "free") in deviations, path


def _terminal(*faults: str) -> Terminal:
    profile, pers, keys = _model()
    card = VirtualCard.personalize(profile, pers, keys, faults=frozenset(faults))
    t = Terminal(card, profile, keys)
    t.reset()
    return t


def test_status_word_substitution_acts_only_on_its_commands() -> None:
    t = _terminal("read_binary_past_end_6a82")
    size = t.profile.file("DDF1/EF07").size or 0
    t.select_path("DDF1/EF07")
    t.authenticate("RK_DDF1")
    assert t.read_binary(size)[1] == 0x6A82
    t.authenticate("UK_DDF1")
    assert t.update_binary(size, b"\x00") == 0x6B00      # UPDATE BINARY keeps the reference SW


def test_record_patch_bends_one_record() -> None:
    t = _terminal("data_coding_011")
    ref = _terminal()
    for term in (t, ref):
        term.select_path("DDF1/EF06")
        term.authenticate("RK_DDF1")
    faulty, good = t.read_record(1), ref.read_record(1)
    assert faulty[0][:3] == good[0][:2] + b"\xff" and faulty[0][3:] == good[0][3:]
    assert t.read_record(2) == ref.read_record(2)


def test_layout_and_access_changes_reshape_the_tree() -> None:
    t = _terminal("fs_records_df03_ef05", "sec_read_free_df01_ef05")
    t.select_path("DF03/EF05")
    t.authenticate("RK_DF03")
    count = t.profile.record_count("DF03/EF05")
    assert t.read_record(count - 1)[1] == 0x9000
    assert t.read_record(count)[1] == 0x6A83
    t.reset()
    t.select_path("DF01/EF05")
    assert t.read_record(1)[1] == 0x9000                  # no right needed any more


def test_item_value_changes_the_card_not_its_keys() -> None:
    t, ref = _terminal("data_value_057"), _terminal()
    record = t.profile.place(57).record or 0
    for term in (t, ref):
        term.select_path("DDF1/EF05")
    assert t.read_record(record)[0] != ref.read_record(record)[0]
    assert t.card.content.card_keys == ref.card.content.card_keys   # the true city code


def test_unknown_fault_names_error_out() -> None:
    profile, pers, keys = _model()
    with pytest.raises(ValueError, match=r"unknown fault.*no_such_fault.*rhc card faults"):
        VirtualCard.personalize(profile, pers, keys, faults=frozenset({"no_such_fault"}))
    with pytest.raises(ValueError, match="no_such_fault"):
        check_fault_names(["constant_challenge", "no_such_fault"])
    with pytest.raises(ValueError, match="did you mean constant_challenge"):
        check_fault_names(["constant_chalenge"])
    with pytest.raises(KeyError):
        FaultSet().active("no_such_fault")


def test_fault_needing_a_feature_errors_without_it() -> None:
    profile, pers, keys = _model()
    with pytest.raises(ValueError, match="needs feature pin"):
        VirtualCard.personalize(profile, pers, keys, faults=frozenset({"pin_change_ignored"}))


def test_faults_combine() -> None:
    names = frozenset({"constant_challenge", "fs_photo_3000", "data_an_pad_space"})
    faulty = run_battery(names)
    ref = reference(frozenset())
    assert faulty["p_challenge"][0] == 1
    assert faulty != ref


def test_the_reference_card_asks_no_fault() -> None:
    """CardOS reads like REFERENCE.md: no fault name, no ``active`` question; a card with no
    hook fault runs it as is, one with a hook fault runs FaultyCardOS."""
    import conformance.card.commands as commands
    from conformance.card.hooks import FaultyCardOS

    source = Path(commands.__file__).read_text(encoding="utf-8")
    assert ".active(" not in source
    assert not [name for name in FAULTS if f'"{name}"' in source]
    profile, pers, keys = _model()
    plain = VirtualCard.personalize(profile, pers, keys, faults=frozenset({"data_coding_011"}))
    hooked = VirtualCard.personalize(profile, pers, keys, faults=frozenset({"cyc_no_rotate"}))
    assert type(plain._os) is commands.CardOS
    assert type(hooked._os) is FaultyCardOS
