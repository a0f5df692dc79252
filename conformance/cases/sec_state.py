"""SEC-ST and SEC-CH: the security state and the challenge (REFERENCE.md §3).

Per authentication key family: its right is cleared by selecting another DF and by a reset,
and kept by selecting an EF or the same DF again; replaying the EXTERNAL AUTHENTICATE that
granted it is refused (the challenge it used is gone) and grants nothing.

Per DF: a challenge is consumed by a failed EXTERNAL AUTHENTICATE too, a reset clears it, and
other commands in between (SELECT, READ) leave it. Per file updated by secure messaging: an SM
update cannot reuse the challenge an earlier SM update consumed.

A replay must be refused as "no challenge" (6985): REFERENCE.md §3 makes every EXTERNAL
AUTHENTICATE and CLA-04 command consume the challenge, and without a fresh one the card answers
6985. A card that answers a wrong cryptogram (63Cx) or a wrong MAC (6988) instead still holds
a challenge it should have dropped, and fails. The case then checks that no right was granted
(or no record written) and pays back any try spent.
"""

from __future__ import annotations

from collections.abc import Callable

from conformance.apdu import sw_hex
from conformance.cases.common import make, slug, sw_choice
from conformance.cases.framework import Case, CaseContext
from conformance.cases.sec_kit import (
    CLAUSE_CHALLENGE,
    CLAUSE_STATE,
    CRYPTO_CHOICE,
    GROUP,
    Sec,
    changed_value,
    choices,
    key_slug,
)
from conformance.messages import msg
from conformance.model.profile import CardProfile
from conformance.model.schema import UpdateMode
from conformance.model.tree import auth_families, df_of, files_of, neighbour_df, read_key, rights_of

Body = Callable[[CaseContext], None]

REPLAY_NOTE = (
    "REFERENCE.md §3: a challenge is single-use (the EXTERNAL AUTHENTICATE or CLA-04 command "
    "that follows consumes it, whatever its outcome) and without a fresh challenge the card "
    "answers <sw:no_challenge>; a wrong-cryptogram or wrong-MAC answer means the card kept a "
    "challenge."
)


# --------------------------------------------------------------------------- rights


def _cleared_by_df_change(family: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        df = ctx.profile.key(family).df
        probe = sec.probe_granted(family)
        other = sec.leave_and_return(df)
        sec.expect_refused(sec.run(probe),
                           msg("what.sec_state.after_selecting_and_again",
                               probe=probe.describe(), other=other, df=df))

    return body


def _cleared_by_reset(family: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        probe = sec.probe_granted(family)
        sec.reset()
        sec.go(probe.path)
        sec.expect_refused(sec.run(probe), msg("what.sec_state.after_a_reset",
                                               probe=probe.describe()))

    return body


def _kept_by_selects(family: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        df = ctx.profile.key(family).df
        probe = sec.probe_granted(family)
        other_ef = next((p for p in files_of(ctx.profile, df) if p != probe.path), None)
        if other_ef is not None:
            sec.select_fid(ctx.profile.file(other_ef).fid, msg("what.sec_state.select",
                                                               other_ef=other_ef))
        sec.select_fid(ctx.profile.df(df).fid, msg("what.sec_state.select_again", df=df))
        sec.expect_ok(sec.run(probe),
                      msg("what.sec_state.after_selecting_again",
                          probe=probe.describe(),
                          first=msg("label.and", item=other_ef) if other_ef else "", df=df))

    return body


# --------------------------------------------------------------------------- challenge


def _replay_auth(family: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        probe = sec.probe(family)
        df = ctx.profile.key(family).df
        sec.enter_key_df(family)
        with sec.guard():
            first = sec.attempt(family)
            with ctx.precondition(msg("what.sec_kit.authenticate", family=family)):
                first.response.check()
            other = sec.leave_and_return(df)  # the right granted is gone; the challenge too
            ctx.note(f"replaying the EXTERNAL AUTHENTICATE of {family} after {other} and {df}")
            again = sec.send_auth(family, first.command)
            ctx.expect_sw(again, "no_challenge",
                          what=msg("what.sec_state.replayed_external_authenticate_of_its",
                                   family=family))
            sec.expect_refused(sec.run(probe),
                               msg("what.sec_state.after_the_replay_it_must",
                                   probe=probe.describe()))

    return body


def _consumed_by_failure(df: str, family: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        sec.enter_key_df(family)
        kid = sec.kid(family)
        with sec.guard():
            x8, challenge = sec.x_and_challenge(family)
            wrong = sec.send_auth(family, sec.ext_auth(kid, sec.auth_data(
                family, challenge, x8, wrong=True)))
            want = ctx.profile.sw_text("wrong_cryptogram")
            ctx.check(sec.is_cryptogram_sw(wrong.sw),
                      msg("sw.expected", what=msg("what.wrong_cryptogram", family=family),
                          expected=want, sw=sw_hex(wrong.sw)),
                      expected=want, measured=sw_hex(wrong.sw))
            right = sec.send_auth(family, sec.ext_auth(kid, sec.auth_data(family, challenge, x8)))
            ctx.expect_sw(right, "no_challenge",
                          what=msg("what.sec_state.correct_cryptogram_for_over_the", family=family))

    return body


def _cleared_by_reset_challenge(df: str, family: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        sec.enter_key_df(family)
        x8, challenge = sec.x_and_challenge(family)
        sec.reset()
        sec.go(df)
        with sec.guard():
            command = sec.ext_auth(sec.kid(family), sec.auth_data(family, challenge, x8))
            response = sec.send_auth(family, command)
            ctx.expect_sw(response, "no_challenge",
                          what=msg("what.sec_state.external_authenticate_over_a_challenge",
                                   family=family))

    return body


def _kept_across_commands(df: str, family: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        sec.enter_key_df(family)
        target = next(iter(files_of(ctx.profile, df)), None)
        with sec.guard():
            x8, challenge = sec.x_and_challenge(family)
            done = []
            if target is not None:
                sec.select_fid(ctx.profile.file(target).fid, msg("what.sec_state.select_2",
                                                                 target=target))
                sec.read_first(target)  # refused or not: another command in between
                done.append(f"SELECT and read {target}")
            sec.select_fid(ctx.profile.df(df).fid, msg("what.sec_state.select_again", df=df))
            done.append(f"SELECT {df}")
            command = sec.ext_auth(sec.kid(family), sec.auth_data(family, challenge, x8))
            sec.expect_ok(sec.send_auth(family, command),
                          msg("what.sec_state.external_authenticate_after_the_challenge",
                              family=family, between=', '.join(done)))

    return body


def _replay_sm(path: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        profile = ctx.profile
        item = profile.file(path).items[0]
        original = sec.current_record(path, 1)
        changed = original[:2] + changed_value(profile, item, original[2:])
        sec.grant(profile.file(path).access.update or "")
        sec.go(path)
        with ctx.restoring(msg("what.sec_state.record_1_of",
                               path=path), lambda: sec.put_back_record(path, original)):
            challenge = sec.challenge()
            first = sec.sm_command(path, 1, changed, challenge)
            second = sec.sm_command(path, 1, original, challenge)
            with ctx.precondition(msg("what.sec_state.sm_update_of_record_1", path=path)):
                ctx.send(first).check()
            again = ctx.send(second)
            ctx.expect_sw(again, "no_challenge",
                          what=msg("what.sec_state.a_second_sm_update_of", path=path))
            now = sec.record_now(1)
            ctx.check(now == changed,
                      msg("state.replayed_wrote", path=path,
                          got=now.hex().upper() if now else msg("value.unreadable"),
                          expected=changed.hex().upper()),
                      expected=changed.hex().upper(),
                      measured=now.hex().upper() if now else "unreadable")

    return body


# --------------------------------------------------------------------------- catalogue


def cases(profile: CardProfile) -> list[Case]:
    out: list[Case] = []
    ok = sw_hex(profile.sw("ok"))
    refused = sw_hex(profile.sw("security_not_satisfied"))
    no_challenge = sw_hex(profile.sw("no_challenge"))
    prefix = profile.sw_prefix("wrong_cryptogram")
    for family in auth_families(profile):
        opened = rights_of(profile, family)
        if not opened:
            continue
        df = profile.key(family).df
        probe = f"{opened[0][1]} {opened[0][0]}"
        other = neighbour_df(profile, df)
        if other is not None:
            make(out, f"SEC-ST-{key_slug(family)}-001", GROUP,
                 f"选择其他 DF 后 {family} 的权限被清除",
                 f"Selecting another DF clears the right of {family}",
                 CLAUSE_STATE,
                 f"After {family} is granted in {df}, SELECT {other} then {df} again: "
                 f"{probe} answers {refused}.",
                 purpose_zh=f"在 {df} 中获得 {family} 后，选择 {other} 再重新选择 {df}：{probe} 应"
                            f"答 {refused}"
                            "。",
                 expected_sw=("security_not_satisfied",), severity="blocker",
                 preconditions=f"{family} authenticated in {df}",
                 reference_choice=choices(sw_choice("security_not_satisfied"), CRYPTO_CHOICE),
            )(_cleared_by_df_change(family))
        make(out, f"SEC-ST-{key_slug(family)}-002", GROUP,
             f"复位后 {family} 的权限被清除",
             f"A reset clears the right of {family}",
             CLAUSE_STATE,
             f"After {family} is granted and the card is reset, {probe} answers {refused}.",
             purpose_zh=f"获得 {family} 后复位卡片，{probe} 应答 {refused}。",
             expected_sw=("security_not_satisfied",), severity="blocker",
             preconditions=f"{family} authenticated in {df}",
             reference_choice=choices(sw_choice("security_not_satisfied"), CRYPTO_CHOICE),
        )(_cleared_by_reset(family))
        make(out, f"SEC-ST-{key_slug(family)}-003", GROUP,
             f"选择 EF 或重选当前 DF 不清除 {family} 的权限",
             f"Selecting an EF or the same DF again keeps the right of {family}",
             CLAUSE_STATE,
             f"After {family} is granted in {df}, selecting another EF of {df} and {df} itself "
             f"again keeps the right: {probe} answers {ok}.",
             purpose_zh=f"在 {df} 中获得 {family} 后，选择 {df} 的另一个 EF 并重新选择 {df} 本身，"
                        f"权限保持：{probe}"
                        f" 应答 {ok}。",
             expected_sw=("ok",), severity="critical",
             preconditions=f"{family} authenticated in {df}",
             reference_choice=CRYPTO_CHOICE,
        )(_kept_by_selects(family))
        if other is not None:
            make(out, f"SEC-CH-{key_slug(family)}-001", GROUP,
                 f"重放 {family} 的外部认证被拒绝",
                 f"A replayed EXTERNAL AUTHENTICATE of {family} is refused",
                 CLAUSE_CHALLENGE,
                 f"The EXTERNAL AUTHENTICATE that granted {family}, sent again after its right "
                 f"was cleared, answers {no_challenge} (its challenge was consumed, none is "
                 f"fresh) and grants nothing: {probe} answers {refused}.",
                 purpose_zh=f"获得 {family} 的外部认证在其权限被清除后再次发送，应答 {no_challenge}"
                            "（其随机数已消耗，没"
                            f"有新的随机数）且不授予任何权限：{probe} 应答 {refused}。",
                 expected_sw=("no_challenge", "security_not_satisfied"), severity="blocker",
                 preconditions=f"{family} authenticated once in {df}, then {other} and {df} "
                               "selected",
                 reference_choice=choices(
                     sw_choice("no_challenge", "security_not_satisfied"), REPLAY_NOTE,
                     CRYPTO_CHOICE),
            )(_replay_auth(family))
    for df in profile.dfs:
        rk = read_key(profile, df)
        if rk is None:
            continue
        make(out, f"SEC-CH-{df}-002", GROUP,
             f"{df} 认证失败也消耗随机数",
             f"A failed EXTERNAL AUTHENTICATE in {df} consumes the challenge",
             CLAUSE_CHALLENGE,
             f"A wrong cryptogram for {rk} ({prefix}x) uses the challenge up: a correct "
             f"cryptogram over the same challenge then answers {no_challenge}.",
             purpose_zh=f"{rk} 的错误认证密文（{prefix}x）消耗随机数：随后以同一随机数计算的正确认"
                        f"证密文应答 {no_challenge}"
                        "。",
             expected_sw=("wrong_cryptogram", "no_challenge"), severity="blocker",
             reference_choice=choices(sw_choice("no_challenge"), CRYPTO_CHOICE),
        )(_consumed_by_failure(df, rk))
        make(out, f"SEC-CH-{df}-003", GROUP,
             f"{df} 复位清除随机数",
             f"A reset clears the challenge ({df})",
             CLAUSE_CHALLENGE,
             f"A challenge taken in {df} before a reset cannot be used after it: EXTERNAL "
             f"AUTHENTICATE {rk} over it answers {no_challenge}.",
             purpose_zh=f"复位前在 {df} 中取得的随机数复位后不能使用：以其进行 {rk} 外部认证应答 "
                        f"{no_challenge}"
                        "。",
             expected_sw=("no_challenge",), severity="blocker",
             reference_choice=choices(sw_choice("no_challenge"), CRYPTO_CHOICE),
        )(_cleared_by_reset_challenge(df, rk))
        make(out, f"SEC-CH-{df}-004", GROUP,
             f"{df} 其他命令不影响随机数",
             f"Other commands leave the challenge ({df})",
             CLAUSE_CHALLENGE,
             f"GET CHALLENGE, then SELECT an EF of {df}, READ it and SELECT {df} again: "
             f"EXTERNAL AUTHENTICATE {rk} over that challenge still answers {ok}.",
             purpose_zh=f"取随机数后选择 {df} 的一个 EF、读取它并重新选择 {df}：以该随机数进行 {rk}"
                        f" 外部认证仍应答 {ok}。",
             expected_sw=("ok",), severity="normal",
             reference_choice=CRYPTO_CHOICE,
        )(_kept_across_commands(df, rk))
    for path, ef in profile.files.items():
        if ef.access.update_mode is not UpdateMode.SM or ef.access.update is None:
            continue
        make(out, f"SEC-CH-{slug(path)}-005", GROUP,
             f"{path} 安全报文更新不能重用已消耗的随机数",
             f"An SM update of {path} cannot reuse a consumed challenge",
             CLAUSE_CHALLENGE,
             f"Two SM updates of record 1 of {path} computed over one challenge: the first "
             f"writes ({ok}); the second answers {no_challenge} (the first consumed the "
             "challenge) and does not write. The record is restored afterwards.",
             purpose_zh=f"以同一随机数计算的两次 {path} 记录 1 的安全报文更新：第一次写入（{ok}）"
                        f"；第二次应答 {no_challenge}"
                        "（第一次已消耗随机数）且不写入。之后记录被恢复。",
             expected_sw=("ok", "no_challenge"), severity="blocker",
             preconditions=f"{profile.file(path).access.read} and {ef.access.update} "
                           f"authenticated in {df_of(path)}",
             reference_choice=choices(sw_choice("no_challenge"), REPLAY_NOTE, CRYPTO_CHOICE),
        )(_replay_sm(path))
    return out
