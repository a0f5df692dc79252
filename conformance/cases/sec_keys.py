"""SEC-KEY, SEC-EA, SEC-DIV: authentication keys, their counters and the command.

Per authentication key family (every key with a KID, REFERENCE.md §3): a wrong cryptogram
answers 63Cx with x = tries left; a correct one afterwards succeeds, grants the declared right
and restores the counter (shown by a second wrong try answering the same x); a failed try
leaves rights already granted. No case spends more than two wrong tries per key, and each pays
them back with a correct authentication.

Per DF: EXTERNAL AUTHENTICATE with a KID that is not a key of the current DF (6A88), a trailer
byte other than 01 (6A80), P1 ≠ 00 (6A86), Lc ≠ 11 (6700), and without a challenge (6985).

Diversification: keys derived from another card-number or city-code factor fail (63Cx), and the
card keys do not follow a later update of item 57.

No case locks a key: REFERENCE.md §3 lets a test spend at most 2 tries and requires it to
restore the counter, so a key's behaviour at 0 tries (6983) is not tested here. The plan says
how many wrong tries SEC-KEY-*-001 spends (``wrong_cryptogram_tries``, default 1) within its
budget (``max_wrong_tries``, which may not exceed the §3 cap); a value outside those bounds is a
plan error (ERROR), never silently clamped.
"""

from __future__ import annotations

from collections.abc import Callable

from conformance.apdu import sw_hex
from conformance.cases.common import make, plan_count, sw_choice
from conformance.cases.framework import Case, CaseContext
from conformance.cases.sec_kit import (
    CLAUSE_DIV,
    CLAUSE_EA,
    CLAUSE_KEY,
    CRYPTO_CHOICE,
    GROUP,
    Sec,
    choices,
    key_slug,
    retry_choice,
)
from conformance.messages import msg
from conformance.model.profile import CardProfile
from conformance.model.tree import auth_families, df_of, read_key, rights_of

Body = Callable[[CaseContext], None]

REFERENCE_TRY_CAP = 2  # REFERENCE.md §3: "a test may spend at most 2 tries" per key
DEFAULT_WRONG_TRIES = 1  # a plan may leave wrong_cryptogram_tries out: the least a case spends


def _wrong_tries(ctx: CaseContext) -> int:
    """Plan parameter ``wrong_cryptogram_tries``, within 1..``max_wrong_tries``, which is
    itself within 1..2 (REFERENCE.md §3). Out of bounds is a plan error, not clamped."""
    budget = plan_count(ctx, "max_wrong_tries")
    if not 1 <= budget <= REFERENCE_TRY_CAP:
        raise ValueError(
            f"plan parameter max_wrong_tries is {budget}: REFERENCE.md §3 lets a test spend "
            f"1 to {REFERENCE_TRY_CAP} tries per key"
        )
    tries = plan_count(ctx, "wrong_cryptogram_tries", DEFAULT_WRONG_TRIES)
    if not 1 <= tries <= budget:
        raise ValueError(
            f"plan parameter wrong_cryptogram_tries is {tries}: it must be 1 to {budget} "
            "(max_wrong_tries)"
        )
    return tries


# --------------------------------------------------------------------------- per key family


def _wrong_then_right(family: str) -> Body:
    def body(ctx: CaseContext) -> None:
        tries = _wrong_tries(ctx)  # a plan error stops the case before it touches the card
        sec = Sec(ctx)
        probe = sec.probe(family)
        df = ctx.profile.key(family).df
        sec.grant(family)  # a correct authentication: the counter is full
        sec.leave_and_return(df)  # and the right it granted is gone again
        with sec.guard():
            for i in range(tries):
                attempt = sec.attempt(family, wrong=True)
                left = sec.limit - 1 - i
                sec.expect_tries(attempt.response, left,
                           msg("what.sec_keys.wrong_cryptogram_for_counter_full_2",
                               n=i + 1, family=family))
            attempt = sec.attempt(family)
            sec.expect_ok(attempt.response, msg("what.sec_keys.correct_cryptogram_for_after_wrong",
                                                family=family, tries=tries))
            sec.expect_ok(sec.run(probe), msg("what.sec_keys.after_succeeded",
                                              probe=probe.describe(), family=family))

    return body


def _counter_restored(family: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        sec.grant(family)
        with sec.guard():
            attempt = sec.attempt(family, wrong=True)
            sec.expect_tries(attempt.response, sec.limit - 1,
                       msg("what.sec_keys.first_wrong_cryptogram_for_counter", family=family))
            sec.expect_ok(sec.attempt(family).response,
                          msg("what.sec_keys.correct_cryptogram_for_after_a", family=family))
            attempt = sec.attempt(family, wrong=True)
            sec.expect_tries(attempt.response, sec.limit - 1,
                       msg("what.sec_keys.wrong_cryptogram_for_after_a", family=family))
            sec.expect_ok(sec.attempt(family).response,
                          msg("what.sec_keys.correct_cryptogram_for_restoring_the", family=family))

    return body


def _failed_try_keeps_rights(family: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        probe = sec.probe_granted(family)
        with sec.guard():
            attempt = sec.attempt(family, wrong=True)
            sec.expect_tries(attempt.response, sec.limit - 1,
                       msg("what.sec_keys.wrong_cryptogram_for_counter_full", family=family))
            sec.expect_ok(sec.run(probe),
                          msg("what.sec_keys.after_a_failed_try_the", probe=probe.describe()))

    return body


# --------------------------------------------------------------------------- per DF: the command


def _other_df_key(profile: CardProfile, df: str) -> str | None:
    """A key of another DF whose KID is no key of ``df``, preferring a KID that only one key
    of the profile has (so a card that looks it up elsewhere finds exactly that key)."""
    here = {k.kid for k in profile.keys.values() if k.df == df and k.kid is not None}
    candidates = [
        name for name, k in profile.keys.items()
        if k.kid is not None and k.df != df and k.kid not in here
    ]
    kids = [k.kid for k in profile.keys.values()]
    unique = [name for name in candidates if kids.count(profile.key(name).kid) == 1]
    return (unique or candidates or [None])[0]


def _foreign_kid(df: str, other: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        sec.factors()
        sec.go(df)
        with sec.guard():
            x8, challenge = sec.x_and_challenge(other)
            command = sec.ext_auth(sec.kid(other), sec.auth_data(other, challenge, x8))
            response = sec.send_auth(other, command)
            ctx.expect_sw(response, "key_not_found",
                          what=msg("what.sec_keys.external_authenticate_in_with_kid",
                                   df=df, kid=f"{sec.kid(other):02X}", other=other))

    return body


def _malformed(df: str, family: str, variant: str) -> Body:
    """A correct cryptogram in a malformed command: refused, and no right granted."""

    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        probe = sec.probe(family)
        sec.enter_key_df(family)
        kid = sec.kid(family)
        with sec.guard():
            if variant == "trailer":
                x8, challenge = sec.x_and_challenge(family)
                wrong = (sec.trailer + 1) & 0xFF
                data = sec.auth_data(family, challenge, x8, trailer=wrong)
                response = sec.send_auth(family, sec.ext_auth(kid, data))
                ctx.expect_sw(response, "wrong_data",
                              what=msg("what.sec_keys.external_authenticate_with_trailer",
                                       family=family, trailer=f"{wrong:02X}"))
            elif variant == "p1":
                x8, challenge = sec.x_and_challenge(family)
                data = sec.auth_data(family, challenge, x8)
                response = sec.send_auth(family, sec.ext_auth(kid, data, p1=0x01))
                ctx.expect_sw(response, "wrong_p1p2",
                              what=msg("what.sec_keys.external_authenticate_with_p1_01",
                                       family=family))
            else:  # Lc: the trailer left out, then one byte too many
                for label, cut in ((msg("label.lc_short"), -1), (msg("label.lc_long"), 1)):
                    x8, challenge = sec.x_and_challenge(family)
                    data = sec.auth_data(family, challenge, x8)
                    data = data[:-1] if cut < 0 else data + b"\x00"
                    response = sec.send_auth(family, sec.ext_auth(kid, data))
                    ctx.expect_sw(response, "wrong_length",
                                  what=msg("what.sec_keys.external_authenticate_with",
                                           family=family, label=label))
            sec.expect_refused(sec.run(probe),
                               msg("what.sec_keys.after_the_refused_external_authenticate",
                                   probe=probe.describe()))

    return body


def _no_challenge(df: str, family: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        sec.enter_key_df(family)
        kid = sec.kid(family)
        with sec.guard():
            # (a) no GET CHALLENGE since the reset
            x8 = bytes(range(1, 1 + sec.challenge_length))
            guess = bytes(sec.challenge_length)
            data = sec.auth_data(family, guess, x8)
            response = sec.send_auth(family, sec.ext_auth(kid, data))
            ctx.expect_sw(response, "no_challenge",
                          what=msg("what.sec_keys.external_authenticate_with_no_challenge",
                                   family=family))
            # (b) the challenge was used up by a successful EXTERNAL AUTHENTICATE
            first = sec.attempt(family)
            with ctx.precondition(msg("what.sec_keys.authenticate_once", family=family)):
                first.response.check()
            x8 = bytes(b ^ 0xFF for b in first.x8)
            data = sec.auth_data(family, first.challenge, x8)
            response = sec.send_auth(family, sec.ext_auth(kid, data))
            ctx.expect_sw(response, "no_challenge",
                          what=msg("what.sec_keys.external_authenticate_over_a_challenge",
                                   family=family))

    return body


# --------------------------------------------------------------------------- diversification


def _other_factor(family: str, which: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        card_no8, city8 = sec.factors()
        sec.grant(family)
        with sec.guard():
            if which == "card":
                other = {"card_no8": card_no8[:-1] + bytes([card_no8[-1] ^ 0xFF])}
                label = msg("label.other_card_no", value=other["card_no8"].hex().upper())
            else:
                other = {"city8": bytes([city8[0] ^ 0x11]) + city8[1:]}
                label = msg("label.other_city", value=other["city8"].hex().upper())
            attempt = sec.attempt(family, wrong=False, **other)
            sec.expect_tries(attempt.response, sec.limit - 1,
                       msg("what.sec_keys.with_keys_diversified_by", family=family, label=label))
            sec.expect_ok(sec.attempt(family).response,
                          msg("what.sec_keys.with_the_card_s_own", family=family))

    return body


def _keys_do_not_follow_item57(family: str) -> Body:
    def body(ctx: CaseContext) -> None:
        sec = Sec(ctx)
        sec.factors()  # CityCode8 of the city code written at personalization
        city = ctx.profile.role_item("city_code")
        place = ctx.profile.place(city)
        assert place.record is not None
        original = sec.current_record(place.path, place.record)
        value = bytearray(original[2:])
        value[0] = 0x31 if value[0] != 0x31 else 0x11
        changed = original[:2] + bytes(value)
        def undo() -> None:
            sec.write_back_record(place.path, place.record or 1, original)

        with sec.guard(), ctx.restoring(msg("what.sec_keys.item", city=city), undo):
            with ctx.precondition(msg("what.sec_keys.write_another_city_code_into", city=city)):
                ctx.session.update_record_sm(place.path, place.record, changed)
            sec.enter_key_df(family)
            attempt = sec.attempt(family)  # factors: the original CityCode8
            sec.expect_ok(attempt.response,
                          msg("what.sec_keys.with_keys_diversified_by_the",
                              family=family, city=city))

    return body


# --------------------------------------------------------------------------- catalogue


def cases(profile: CardProfile) -> list[Case]:
    out: list[Case] = []
    ok = sw_hex(profile.sw("ok"))
    refused = sw_hex(profile.sw("security_not_satisfied"))
    limit = profile.spec.security.retry_limit
    prefix = profile.sw_prefix("wrong_cryptogram")
    first_wrong = f"{prefix}{limit - 1:X}"
    retry = retry_choice(profile)
    families = auth_families(profile)
    for family in families:
        key = profile.key(family)
        opened = rights_of(profile, family)
        if not opened:
            continue
        probe_path, probe_right = opened[0]
        make(out, f"SEC-KEY-{key_slug(family)}-001", GROUP,
             f"{family} 认证码错误返回 {prefix}x，正确认证后恢复",
             f"{family}: a wrong cryptogram answers {prefix}x, a correct one then succeeds",
             CLAUSE_KEY,
             f"With the counter of {family} full, a wrong cryptogram answers {first_wrong} "
             f"(tries left); a correct one afterwards answers {ok} and grants the declared "
             f"right ({probe_right} {probe_path}).",
             purpose_zh=f"{family} 计数已满时，错误的认证密文应答 {first_wrong}（剩余次数）；随后"
                        f"正确的认证密文应答 {ok}"
                        f" 并授予规定的权限（{probe_right} {probe_path}）。",
             expected_sw=(f"wrong_cryptogram:{limit - 1:X}", "ok"), severity="critical",
             preconditions=f"{family} authenticated once (counter full), then its DF left and "
                           "entered again (right cleared)",
             reference_choice=choices(retry, CRYPTO_CHOICE),
        )(_wrong_then_right(family))
        make(out, f"SEC-KEY-{key_slug(family)}-002", GROUP,
             f"{family} 认证成功后重试计数器恢复",
             f"{family}: a successful authentication restores the retry counter",
             CLAUSE_KEY,
             f"Wrong, correct, wrong again: both wrong cryptograms answer {first_wrong}, so the "
             f"success in between restored the counter of {family} to {limit}.",
             purpose_zh=f"错误、正确、再错误：两次错误的认证密文均应答 {first_wrong}，说明中间的成"
                        f"功把 {family} 的计数恢复为"
                        f" {limit}。",
             expected_sw=(f"wrong_cryptogram:{limit - 1:X}", "ok"), severity="critical",
             preconditions=f"{family} authenticated once (counter full)",
             reference_choice=choices(retry, CRYPTO_CHOICE),
        )(_counter_restored(family))
        make(out, f"SEC-KEY-{key_slug(family)}-003", GROUP,
             f"{family} 认证失败不影响已获得的权限",
             f"{family}: a failed try leaves the rights already granted",
             CLAUSE_KEY,
             f"With {family} granted, a wrong cryptogram for it ({first_wrong}) leaves its "
             f"right: {probe_right} {probe_path} still answers {ok}.",
             purpose_zh=f"已获 {family} 时，其错误的认证密文（{first_wrong}）不影响已有权限："
                        f"{probe_right}"
                        f" {probe_path}"
                        f" 仍应答 {ok}。",
             expected_sw=(f"wrong_cryptogram:{limit - 1:X}", "ok"), severity="critical",
             preconditions=f"{family} authenticated in {key.df}",
             reference_choice=choices(retry, CRYPTO_CHOICE),
        )(_failed_try_keeps_rights(family))
    for df in profile.dfs:
        rk = read_key(profile, df)
        if rk is None:
            continue
        other = _other_df_key(profile, df)
        if other is not None:
            kid = profile.key(other).kid or 0
            make(out, f"SEC-EA-{df}-001", GROUP,
                 f"{df} 中使用其他 DF 的密钥标识 {kid:02X} 返回 <sw:key_not_found>",
                 f"EXTERNAL AUTHENTICATE in {df} with KID {kid:02X} (not of {df}) is refused",
                 CLAUSE_EA,
                 f"In {df}, EXTERNAL AUTHENTICATE with KID {kid:02X} (key {other} of "
                 f"{profile.key(other).df}) and a cryptogram correct for that key answers "
                 f"{sw_hex(profile.sw('key_not_found'))}: keys are looked up in the current "
                 "DF only.",
                 purpose_zh=f"在 {df} 中以 KID {kid:02X}（{profile.key(other).df} 的密钥 {other}"
                            "）和对该密钥正确的认证密文进行外部认证应答 "
                            f"{sw_hex(profile.sw('key_not_found'))}"
                            "：密钥只在当前 DF 中查找。",
                 expected_sw=("key_not_found",), severity="critical",
                 reference_choice=choices(
                     sw_choice("key_not_found"),
                     "REFERENCE.md §5 does not place <sw:key_not_found> in its check order; the "
                     "case sends a "
                     "fresh challenge and a cryptogram correct for the other DF's key, so the "
                     "KID is the only thing wrong.",
                     CRYPTO_CHOICE),
            )(_foreign_kid(df, other))
        for number, variant, sw_name, zh, en, what, what_zh in (
            (2, "trailer", "wrong_data", "结尾字节非 01", "a trailing byte other than 01",
             "the trailing byte of the data is not 01", "数据的结尾字节不是 01"),
            (3, "p1", "wrong_p1p2", "P1 非 00", "P1 other than 00", "P1 is 01", "P1 为 01"),
            (4, "lc", "wrong_length", "Lc 非 11", "Lc other than 11",
             "Lc is 10 (no trailer), then 12 (one byte too many)",
             "Lc 为 10（无结尾字节），再为 12（多 1 字节）"),
        ):
            sw = sw_hex(profile.sw(sw_name))
            make(out, f"SEC-EA-{df}-{number:03d}", GROUP,
                 f"{df} 外部认证{zh}返回 {sw}",
                 f"EXTERNAL AUTHENTICATE in {df} with {en} answers {sw}",
                 CLAUSE_EA,
                 f"EXTERNAL AUTHENTICATE {rk} with a correct cryptogram where {what} answers "
                 f"{sw}, and the read right of {df} is not granted (a read then answers "
                 f"{refused}).",
                 purpose_zh=f"以正确的认证密文进行 {rk} 外部认证，但{what_zh}，应答 {sw}，且不授予"
                            f" {df} 的读权限（随后"
                            f"读取应答 {refused}）。",
                 expected_sw=(sw_name, "security_not_satisfied"), severity="normal",
                 reference_choice=choices(
                     sw_choice(sw_name, "security_not_satisfied"),
                     "The cryptogram is correct and the challenge fresh, so the answer does not "
                     "depend on the order of the cryptogram and syntax checks.",
                     CRYPTO_CHOICE),
            )(_malformed(df, rk, variant))
        no_challenge = sw_hex(profile.sw("no_challenge"))
        make(out, f"SEC-EA-{df}-005", GROUP,
             f"{df} 无随机数时外部认证返回 {no_challenge}",
             f"EXTERNAL AUTHENTICATE in {df} without a challenge answers {no_challenge}",
             CLAUSE_EA,
             f"EXTERNAL AUTHENTICATE {rk} with no GET CHALLENGE since the reset, and again "
             f"over a challenge a successful authentication already used, answers "
             f"{no_challenge} both times.",
             purpose_zh=f"复位后未取随机数即进行 {rk} 外部认证，以及以成功认证已用过的随机数再次认"
                        f"证，两次均应答 {no_challenge}"
                        "。",
             expected_sw=("no_challenge", "ok"), severity="critical",
             reference_choice=choices(sw_choice("no_challenge"), CRYPTO_CHOICE),
        )(_no_challenge(df, rk))
    first = families[0]
    make(out, "SEC-DIV-001", GROUP,
         "以其他卡号分散因子分散的密钥认证失败",
         "Keys diversified with another card-number factor fail",
         CLAUSE_DIV,
         f"{first} with a cryptogram from keys diversified by a card-number factor other "
         f"than ATR bytes 5–12 answers {first_wrong}; the card's own factor then succeeds "
         "and restores the counter.",
         purpose_zh=f"以 ATR 第 5–12 字节以外的卡号分散因子分散的密钥计算的认证密文进行 {first} 认"
                    f"证应答 {first_wrong}"
                    "；随后以卡片自身的因子认证成功并恢复计数。",
         expected_sw=(f"wrong_cryptogram:{limit - 1:X}", "ok"), severity="critical",
         preconditions=f"{first} authenticated once (counter full)",
         reference_choice=choices(retry, CRYPTO_CHOICE),
    )(_other_factor(first, "card"))
    level2 = [f for f in families if profile.key(f).level == 2]
    if level2:
        make(out, "SEC-DIV-002", GROUP,
             "以其他城市代码分散因子分散的密钥认证失败",
             "Keys diversified with another city-code factor fail",
             CLAUSE_DIV,
             f"{level2[0]} (two-level diversification) with a cryptogram from keys "
             f"diversified by a city-code factor other than item {profile.role_item('city_code')}"
             f"'s answers {first_wrong}; "
             "the card's own factors then succeed and restore the counter.",
             purpose_zh=f"以数据项 {profile.role_item('city_code')} 以外的城市代码分散因子分散的密"
                        "钥计算的认证密文"
                        f"进行 {level2[0]}（二级分散）认证应答 {first_wrong}；随后以卡片自身的因子"
                        "认证成功并恢复计数。",
             expected_sw=(f"wrong_cryptogram:{limit - 1:X}", "ok"), severity="critical",
             preconditions=f"{level2[0]} authenticated once (counter full)",
             reference_choice=choices(retry, CRYPTO_CHOICE),
        )(_other_factor(level2[0], "city"))
        city = profile.role_item("city_code")
        place = profile.place(city)
        here = [f for f in level2 if profile.key(f).df == df_of(place.path)]
        family = (here or level2)[0]
        make(out, "SEC-DIV-003", GROUP,
             f"更新数据项 {city} 后卡片密钥不变",
             f"Updating item {city} (city code) does not change the card keys",
             CLAUSE_DIV,
             f"After item {city} is updated by secure messaging, {family} still "
             "authenticates with keys diversified by the city code of personalization: card "
             "keys are derived once (§3).",
             purpose_zh=f"以安全报文更新数据项 {city} 之后，{family} 仍以个人化时的城市代码分散的"
                        "密钥认证成功：卡片密钥只在个人化时"
                        "推导一次（§3）。",
             expected_sw=("ok",), severity="critical",
             preconditions=f"item {city} changed with "
                           f"{profile.file(place.path).access.update}; restored afterwards",
             reference_choice=CRYPTO_CHOICE,
        )(_keys_do_not_follow_item57(family))
    return out
