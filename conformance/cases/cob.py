"""COB: the health application on a co-branded card (REFERENCE.md §6 ``co_branded``).

Applicable when the ICS declares ``co_branded``; the ICS names the other application
(``other_application``: an application profile of profiles/applications/, e.g. the minimal
PBOC payment system environment ``pboc-pse``). The cases check what the profile text fixes:

- APP: the other application is there as the ICS says (PSE selected by name, its directory
  lists the ADF's AID, the AID selects the ADF);
- HLT: the health application stays reachable as §1 specifies after the other application
  was selected (DDF1 by FID, free and protected reads, an authenticated SM update);
- ISO: selecting and using the health application leaves the other application's state
  unchanged (its records and data objects, e.g. the ATC 9F36);
- KEY: health keys do not open the other application (a health KID and cryptogram in its ADF,
  a health right, a health SM update: each refused, the protected file unchanged).

The other application's commands are sent raw through the session (which then forgets the
health selection); its state is read without its keys, as its profile declares it readable.
No case spends a try of the other application's keys: a health key never reaches them.
"""

from __future__ import annotations

import secrets

from conformance.apdu import CommandAPDU, ResponseAPDU, sw_hex
from conformance.cases.common import make
from conformance.cases.framework import Case, CaseContext
from conformance.iso7816 import LE_WHOLE, MF_FID, SELECT_P1_BY_FID, SELECT_P2_FCI
from conformance.messages import Msg, msg
from conformance.model.application import (
    OtherApplication,
    load_application,
    sfi_p2,
    tlv_items,
)
from conformance.model.profile import CardProfile
from conformance.model.schema import KeyUse, Structure, UpdateMode
from conformance.model.tree import MF

CLAUSE = "REFERENCE.md §6 co_branded; EMV 4.3 Book 1 §11–12 (PSE, directory, ADF by AID)"
APPLICABILITY = "co_branded"
MAX_DIRECTORY_RECORDS = 16
"""READ RECORD of the PSE directory stops at the first 6A83 or after this many records."""
FCI, DF_NAME, PROPRIETARY, SFI_TAG = "6F", "84", "A5", "88"
RECORD, ENTRY, AID_TAG = "70", "61", "4F"


# --------------------------------------------------------------------------- helpers


def other_application(ctx: CaseContext) -> OtherApplication:
    """The application the ICS names (a precondition: the ICS must name one)."""
    name = ctx.product.other_application
    if not name:
        ctx.inconclusive(msg("cob.no_application"))
    with ctx.precondition(msg("cob.what.load_application", name=name)):
        return load_application(name)


def other_apdu(app: OtherApplication, command: str, p1: int, p2: int, data: bytes = b"",
               le: int | None = None) -> CommandAPDU:
    cla, ins = app.command(command)
    return CommandAPDU(cla, ins, p1, p2, data, le)


def transmit(ctx: CaseContext, apdu: CommandAPDU) -> ResponseAPDU:
    """Send through the session, so that a SELECT makes it forget the health selection."""
    return ctx.session.transmit(apdu)


def select_by_name(ctx: CaseContext, app: OtherApplication, name: bytes) -> ResponseAPDU:
    return transmit(ctx, other_apdu(app, "select", app.select_by_name_p1, SELECT_P2_FCI, name,
                                    le=LE_WHOLE))


def read_other_record(ctx: CaseContext, app: OtherApplication, sfi: int,
                      n: int) -> ResponseAPDU:
    return transmit(ctx, other_apdu(app, "read_record", n, sfi_p2(sfi), le=LE_WHOLE))


def decoded(ctx: CaseContext, data: bytes, what: str | Msg) -> dict[str, list[bytes]]:
    """Tag → values of the data objects at one level (own check: must be BER-TLV)."""
    try:
        items = tlv_items(data)
    except ValueError as exc:
        ctx.fail(msg("cob.not_tlv", what=what, error=str(exc)), measured=data.hex().upper())
        raise AssertionError from exc  # unreachable: fail raises
    out: dict[str, list[bytes]] = {}
    for tag, value in items:
        out.setdefault(tag, []).append(value)
    return out


def one(ctx: CaseContext, objects: dict[str, list[bytes]], tag: str, what: str | Msg) -> bytes:
    """The value of ``tag`` (own check: present)."""
    values = objects.get(tag)
    ctx.check(bool(values), msg("cob.missing_tag", what=what, tag=tag,
                                found=", ".join(objects) or "-"),
              expected=tag, measured=", ".join(objects) or "-")
    assert values is not None
    return values[0]


def enter_adf(ctx: CaseContext, app: OtherApplication) -> None:
    """Select the other application's ADF by AID (a shared step)."""
    what = msg("cob.what.select_adf", aid=app.adf.aid)
    with ctx.step(what):
        ctx.expect_sw(select_by_name(ctx, app, app.aid), "ok", what=what)


def other_state(ctx: CaseContext, app: OtherApplication) -> dict[str, str]:
    """What the other application shows without its keys: every record of its files and
    its data objects, read in its ADF (a shared step)."""
    enter_adf(ctx, app)
    state: dict[str, str] = {}
    with ctx.step(msg("cob.what.read_state", aid=app.adf.aid)):
        for f in app.adf.files:
            for n in range(1, len(f.records) + 1):
                what = msg("cob.what.read_other_record", sfi=f.sfi, n=n)
                data = ctx.expect_sw(read_other_record(ctx, app, f.sfi, n), "ok", what=what).data
                state[f"SFI {f.sfi} record {n}"] = data.hex().upper()
        for tag in app.adf.data_objects:
            what = msg("cob.what.get_data", tag=tag)
            t = bytes.fromhex(tag)
            p1, p2 = (t[0], t[1]) if len(t) == 2 else (0, t[0])
            data = ctx.expect_sw(transmit(ctx, other_apdu(app, "get_data", p1, p2, le=LE_WHOLE)),
                                 "ok", what=what).data
            state[f"data object {tag}"] = data.hex().upper()
    return state


def expect_same_state(ctx: CaseContext, before: dict[str, str], after: dict[str, str],
                      what: str | Msg) -> None:
    """Own check: nothing of the other application's state changed."""
    for item, value in before.items():
        now = after.get(item, "")
        ctx.check(now == value, msg("cob.state_changed", what=what, item=item, before=value,
                                    after=now or "-"),
                  expected=value, measured=now or "-")


def protected_record(ctx: CaseContext, app: OtherApplication) -> tuple[int, bytes]:
    """(SFI, record 1) of the first file only the application's own key updates, read in
    its ADF (a shared step)."""
    files = app.protected_files
    if not files:
        ctx.inconclusive(msg("cob.no_protected_file", name=app.name))
    sfi = files[0].sfi
    enter_adf(ctx, app)
    what = msg("cob.what.read_other_record", sfi=sfi, n=1)
    with ctx.step(what):
        return sfi, ctx.expect_sw(read_other_record(ctx, app, sfi, 1), "ok", what=what).data


def expect_refused(ctx: CaseContext, response: ResponseAPDU, what: str | Msg) -> None:
    """Own check: any status word but 9000 refuses (the text names none); recorded."""
    ok = ctx.sw("ok")
    ctx.check(response.sw != ok, msg("cob.accepted", what=what, sw=sw_hex(response.sw)),
              expected="≠ " + sw_hex(ok), measured=sw_hex(response.sw))
    ctx.observe(msg("cob.refused", what=what, sw=sw_hex(response.sw)))


def expect_unchanged(ctx: CaseContext, app: OtherApplication, sfi: int, before: bytes) -> None:
    """Own check: the protected record reads as before."""
    after = protected_record(ctx, app)[1]
    ctx.check(after == before, msg("cob.protected_changed", sfi=sfi, before=before.hex().upper(),
                                   after=after.hex().upper()),
              expected=before.hex().upper(), measured=after.hex().upper())


def health_factors(ctx: CaseContext) -> tuple[bytes, bytes]:
    """CardNo8 and CityCode8 (a precondition; read before the other application is
    entered, since the city code is read in DDF1)."""
    with ctx.precondition(msg("cob.what.factors")):
        return ctx.session.card_number_factor, ctx.session.city_code_factor


def top_df(profile: CardProfile) -> str:
    """The health DDF (DDF1): the DF under the MF."""
    return next(name for name, d in profile.dfs.items() if d.parent == MF)


def update_key(profile: CardProfile, df: str) -> str:
    """The first update key of a DF that EXTERNAL AUTHENTICATE grants."""
    return next(n for n, k in profile.keys.items()
                if k.df == df and k.use is KeyUse.UPDATE and k.kid is not None)


def sm_file(profile: CardProfile, df: str) -> str:
    """The first TLV file of a DF updated with secure messaging."""
    return next(path for path, f in profile.files.items()
                if path.startswith(df + "/") and f.structure is Structure.TLV_RECORDS
                and f.access.update_mode is UpdateMode.SM)


def rewrite(ctx: CaseContext, path: str) -> None:
    """Read record 1 of ``path`` and write it back with SM (the health update right and
    secure messaging; the card's content stays as it was)."""
    record = ctx.session.read_record(path, 1)
    ctx.session.update_record_sm(path, 1, record)


# --------------------------------------------------------------------------- cases


def cases(profile: CardProfile) -> list[Case]:
    out: list[Case] = []
    ddf = top_df(profile)
    ddf_fid = bytes.fromhex(profile.df(ddf).fid)
    free = next(p for p, f in profile.files.items()
                if p.startswith(ddf + "/") and f.access.read == "free"
                and f.structure is Structure.TLV_RECORDS)
    guarded = next(p for p, f in profile.files.items()
                   if p.startswith(ddf + "/") and f.access.read != "free"
                   and f.structure is Structure.TLV_RECORDS)
    ddf_sm = sm_file(profile, ddf)
    child = next(name for name, d in profile.dfs.items() if d.parent == ddf)
    child_sm = sm_file(profile, child)
    ddf_uk = update_key(profile, ddf)
    pre = "card reset; no rights granted; the ICS names the other application"

    @make(
        out, "COB-APP-001", "COB",
        "联名卡另一应用：支付系统环境、目录与按 AID 选择",
        "Co-branded card: the other application's PSE, directory and ADF by AID",
        CLAUSE,
        "SELECT <cmd:select> 04 00 of the PSE name answers <sw:ok> with FCI 6F (84 the PSE "
        "name, A5 with 88 the directory SFI); READ RECORD of the directory lists an entry 61 "
        "with 4F = the AID the ICS names; SELECT of that AID answers <sw:ok> with FCI 6F whose "
        "84 is the AID.",
        purpose_zh="按名称选择支付系统环境（<cmd:select> 04 00）应答 <sw:ok> 并返回 FCI 6F（84 为"
                   "支付系统环境名称，A5 中 88 为目录 SFI）；读目录记录可见 4F 为 ICS 所声明 AID 的"
                   "目录项 61；选择该 AID 应答 <sw:ok>，FCI 6F 中 84 为该 AID。",
        applicability=APPLICABILITY, preconditions=pre, expected_sw=("ok",),
        choices=("co_branded",),
    )
    def application_present(ctx: CaseContext) -> None:
        app = other_application(ctx)
        what = msg("cob.what.select_pse", name=app.pse.name)
        fci = decoded(ctx, ctx.expect_sw(select_by_name(ctx, app, app.pse_name), "ok",
                                         what=what).data, what)
        inner = decoded(ctx, one(ctx, fci, FCI, what), what)
        name = one(ctx, inner, DF_NAME, what)
        ctx.check(name == app.pse_name, msg("cob.wrong_value", what=what, tag=DF_NAME,
                                            value=name.hex().upper(),
                                            expected=app.pse_name.hex().upper()),
                  expected=app.pse_name.hex().upper(), measured=name.hex().upper())
        sfi_value = one(ctx, decoded(ctx, one(ctx, inner, PROPRIETARY, what), what), SFI_TAG,
                        what)
        sfi = sfi_value[0] if sfi_value else 0
        if sfi != app.pse.directory_sfi:
            ctx.observe(msg("cob.directory_sfi", sfi=sfi, expected=app.pse.directory_sfi))
        aids: list[str] = []
        for n in range(1, MAX_DIRECTORY_RECORDS + 1):
            rwhat = msg("cob.what.read_directory", sfi=sfi, n=n)
            response = read_other_record(ctx, app, sfi, n)
            if n > 1 and response.sw == ctx.sw("record_not_found"):
                break
            data = ctx.expect_sw(response, "ok", what=rwhat).data
            for entry in decoded(ctx, one(ctx, decoded(ctx, data, rwhat), RECORD, rwhat),
                                 rwhat).get(ENTRY, []):
                aids += [v.hex().upper() for v in decoded(ctx, entry, rwhat).get(AID_TAG, [])]
        ctx.check(app.adf.aid in aids, msg("cob.directory_lacks_aid", sfi=sfi, aid=app.adf.aid,
                                           found=", ".join(aids) or "-"),
                  expected=app.adf.aid, measured=", ".join(aids) or "-")
        awhat = msg("cob.what.select_adf", aid=app.adf.aid)
        fci = decoded(ctx, ctx.expect_sw(select_by_name(ctx, app, app.aid), "ok",
                                         what=awhat).data, awhat)
        aid = one(ctx, decoded(ctx, one(ctx, fci, FCI, awhat), awhat), DF_NAME, awhat)
        ctx.check(aid == app.aid, msg("cob.wrong_value", what=awhat, tag=DF_NAME,
                                      value=aid.hex().upper(), expected=app.adf.aid),
                  expected=app.adf.aid, measured=aid.hex().upper())

    @make(
        out, "COB-HLT-001", "COB",
        "联名卡：选择另一应用后健康应用仍按规定可达",
        "Co-branded card: the health application is reachable as specified after the other "
        "application",
        CLAUSE + "; REFERENCE.md §1 (DDF1 selected by FID), §3, §4",
        f"After the other application's ADF was selected, SELECT by FID reaches {ddf} "
        f"(directly, or after {MF_FID}: both are accepted and recorded); then {free} reads "
        f"freely, {guarded} after its read key, and an SM update of {ddf_sm} record 1 with its "
        "update key answers <sw:ok>.",
        purpose_zh=f"选择另一应用的 ADF 之后，按 FID 选择可到达 {ddf}（直接选择，或先选择 "
                   f"{MF_FID}：两者均接受并记录）；随后 {free} 可自由读取，{guarded} 经读密钥认证后"
                   f"可读，以更新密钥对 {ddf_sm} 记录 1 的安全报文更新应答 <sw:ok>。",
        applicability=APPLICABILITY, preconditions=pre, expected_sw=("ok",),
        choices=("co_branded",), interpretations=("cob_ddf1_after_other",),
    )
    def health_reachable(ctx: CaseContext) -> None:
        app = other_application(ctx)
        enter_adf(ctx, app)
        fid_select = other_apdu(app, "select", SELECT_P1_BY_FID, SELECT_P2_FCI, ddf_fid)
        direct = transmit(ctx, fid_select)
        if direct.sw == ctx.sw("ok"):
            ctx.observe(msg("cob.ddf1_direct", df=ddf))
        else:
            ctx.observe(msg("cob.ddf1_via_mf", df=ddf, sw=sw_hex(direct.sw), mf=MF_FID))
            mf = other_apdu(app, "select", SELECT_P1_BY_FID, SELECT_P2_FCI,
                            bytes.fromhex(MF_FID))
            ctx.expect_sw(transmit(ctx, mf), "ok", what=msg("cob.what.select_fid", fid=MF_FID))
            ctx.expect_sw(transmit(ctx, fid_select), "ok",
                          what=msg("cob.what.select_fid", fid=ddf))
        with ctx.expecting(msg("cob.what.health_after_other", df=ddf)):
            ctx.session.read_record(free, 1)
            ctx.session.read_record(guarded, 1)
            rewrite(ctx, ddf_sm)

    @make(
        out, "COB-ISO-001", "COB",
        "联名卡：选择健康应用不改变另一应用的状态",
        "Co-branded card: selecting the health application leaves the other application's "
        "state",
        CLAUSE,
        "The other application's records and data objects (e.g. the ATC 9F36, GET DATA) read "
        "the same before and after selecting every health DF by FID and reading a free file.",
        purpose_zh="依次按 FID 选择健康应用的每个 DF 并读取一个自由读文件之前与之后，另一应用的"
                   "记录与数据对象（如交易计数器 9F36，GET DATA）读出相同。",
        applicability=APPLICABILITY, preconditions=pre, expected_sw=("ok",),
        choices=("co_branded",), interpretations=("cob_state_observed",),
    )
    def select_leaves_state(ctx: CaseContext) -> None:
        app = other_application(ctx)
        before = other_state(ctx, app)
        with ctx.expecting(msg("cob.what.health_selects")):
            for name in profile.dfs:
                ctx.session.select(name, force=True)
            ctx.session.read_record(free, 1)
        expect_same_state(ctx, before, other_state(ctx, app), msg("cob.what.after_selects"))

    @make(
        out, "COB-ISO-002", "COB",
        "联名卡：健康应用的认证与安全报文写入不改变另一应用的状态",
        "Co-branded card: health authentications and SM writes leave the other application's "
        "state",
        CLAUSE + "; REFERENCE.md §3, §4",
        f"The other application's records and data objects read the same before and after "
        f"health EXTERNAL AUTHENTICATEs and SM updates in {ddf} ({ddf_sm}) and {child} "
        f"({child_sm}), each record written back with its own value.",
        purpose_zh=f"在 {ddf}（{ddf_sm}）与 {child}（{child_sm}）中进行健康应用外部认证与安全报文"
                   "更新（每条记录写回原值）之前与之后，另一应用的记录与数据对象读出相同。",
        applicability=APPLICABILITY, preconditions=pre, expected_sw=("ok",),
        choices=("co_branded",), interpretations=("cob_state_observed",),
    )
    def use_leaves_state(ctx: CaseContext) -> None:
        app = other_application(ctx)
        health_factors(ctx)
        before = other_state(ctx, app)
        with ctx.expecting(msg("cob.what.health_writes")):
            rewrite(ctx, ddf_sm)
            rewrite(ctx, child_sm)
        expect_same_state(ctx, before, other_state(ctx, app), msg("cob.what.after_writes"))

    @make(
        out, "COB-KEY-001", "COB",
        "联名卡：健康密钥不能在另一应用的 ADF 中认证",
        "Co-branded card: a health key does not authenticate in the other application's ADF",
        CLAUSE + "; REFERENCE.md §3 (key references in the current DF), §4",
        f"In the other application's ADF, after its GET CHALLENGE, EXTERNAL AUTHENTICATE with "
        f"the KID and a correct cryptogram of the health key {ddf_uk} is refused (any status "
        "word but <sw:ok>, recorded), and the ADF's protected record does not change.",
        purpose_zh=f"在另一应用的 ADF 中取随机数后，以健康密钥 {ddf_uk} 的 KID 与正确认证密文执行"
                   "外部认证被拒绝（除 <sw:ok> 外的任何状态字，并记录），ADF 的受保护记录不变。",
        applicability=APPLICABILITY, preconditions=pre, expected_sw=(),
        choices=("co_branded",), interpretations=("cob_any_refusal",),
    )
    def health_kid_refused(ctx: CaseContext) -> None:
        app = other_application(ctx)
        card_no8, city8 = health_factors(ctx)
        sfi, before = protected_record(ctx, app)
        challenge = take_other_challenge(ctx, app)
        sec = ctx.profile.spec.security
        x8 = secrets.token_bytes(sec.challenge_length)
        cryptogram = ctx.session.keys.auth_cryptogram(ddf_uk, card_no8, city8, challenge, x8)
        kid = ctx.profile.key(ddf_uk).kid
        assert kid is not None
        apdu = ctx.apdu("external_authenticate", 0x00, kid,
                        bytes(cryptogram) + x8 + bytes([sec.ext_auth_trailer]))
        expect_refused(ctx, transmit(ctx, apdu), msg("cob.what.health_ea_in_adf", key=ddf_uk))
        expect_unchanged(ctx, app, sfi, before)

    @make(
        out, "COB-KEY-002", "COB",
        "联名卡：健康密钥获得的权限不能更新另一应用的文件",
        "Co-branded card: a right granted by a health key does not update the other "
        "application's file",
        CLAUSE + "; REFERENCE.md §3 (rights belong to their DF)",
        f"After a successful EXTERNAL AUTHENTICATE with {ddf_uk} in {ddf}, a plain UPDATE "
        "RECORD of the other application's protected record (its own value) in its ADF is "
        "refused (any status word but <sw:ok>, recorded), and the record does not change.",
        purpose_zh=f"在 {ddf} 中以 {ddf_uk} 外部认证成功后，在另一应用的 ADF 中对其受保护记录"
                   "（写入原值）执行明文 UPDATE RECORD 被拒绝（除 <sw:ok> 外的任何状态字，"
                   "并记录），记录不变。",
        applicability=APPLICABILITY, preconditions=pre, expected_sw=(),
        choices=("co_branded",), interpretations=("cob_any_refusal",),
    )
    def health_right_refused(ctx: CaseContext) -> None:
        app = other_application(ctx)
        health_factors(ctx)
        sfi, before = protected_record(ctx, app)
        with ctx.precondition(msg("cob.what.health_auth", key=ddf_uk, df=ddf)):
            ctx.session.authenticate(ddf_uk)
        enter_adf(ctx, app)
        apdu = other_apdu(app, "update_record", 1, sfi_p2(sfi), before)
        expect_refused(ctx, transmit(ctx, apdu), msg("cob.what.update_after_health", key=ddf_uk,
                                                     sfi=sfi))
        expect_unchanged(ctx, app, sfi, before)

    ddf_stk = profile.df(ddf).sm_key

    @make(
        out, "COB-KEY-003", "COB",
        "联名卡：健康安全报文密钥的 MAC 不能更新另一应用的文件",
        "Co-branded card: a health SM key's MAC does not update the other application's file",
        CLAUSE + "; REFERENCE.md §4 (secure messaging)",
        f"In the other application's ADF, after its GET CHALLENGE, an SM UPDATE RECORD "
        f"<cmd:update_record_sm> of record 1 (its own value) encrypted and MACed under the "
        f"health SM key {ddf_stk} for that challenge is refused (any status word but <sw:ok>, "
        "recorded), and the ADF's protected record does not change.",
        purpose_zh=f"在另一应用的 ADF 中取随机数后，以健康安全报文密钥 {ddf_stk} 针对该随机数加密"
                   "并计算 MAC 的安全报文 UPDATE RECORD <cmd:update_record_sm>（记录 1，写入原值）"
                   "被拒绝（除 <sw:ok> 外的任何状态字，并记录），ADF 的受保护记录不变。",
        applicability=APPLICABILITY, preconditions=pre, expected_sw=(),
        choices=("co_branded",), interpretations=("cob_any_refusal",),
    )
    def health_mac_refused(ctx: CaseContext) -> None:
        app = other_application(ctx)
        card_no8, city8 = health_factors(ctx)
        sfi, before = protected_record(ctx, app)
        challenge = take_other_challenge(ctx, app)
        raw = ctx.session.keys.sm_update_apdu(
            ddf_stk, card_no8, city8, challenge, 1, before,
            command=ctx.profile.command("update_record_sm"))
        expect_refused(ctx, transmit(ctx, CommandAPDU.parse(raw)),
                       msg("cob.what.health_mac_in_adf", key=ddf_stk, sfi=sfi))
        expect_unchanged(ctx, app, sfi, before)

    return out


def take_other_challenge(ctx: CaseContext, app: OtherApplication) -> bytes:
    """GET CHALLENGE in the other application (a precondition)."""
    what = msg("cob.what.other_challenge")
    with ctx.precondition(what):
        response = ctx.expect_sw(transmit(ctx, other_apdu(app, "get_challenge", 0, 0,
                                                          le=app.challenge_length)),
                                 "ok", what=what)
    return response.data
