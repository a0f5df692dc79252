"""REC: the medical record files EE0n / ED0n (REFERENCE.md §1 DF03, §4, §5; evidence §2.3,
Appendix A).

Generated from the model for every file an index file points at (``index_of``): its size and
end of file, UPDATE BINARY at the layout's field offsets (first and last field, the fields
across every chunk boundary, the signature fields), a whole-file image written and read back
with different chunkings, the read and update rights, and — where the ICS declares
``record_signatures`` — an SM2-signed record that must come back from the card exactly as
signed. Every case writes back the bytes it found.

The signature is the host's business (the card stores bytes), so the signature case judges
the card only on what a verifier depends on: every one of the signed bytes, the signature and
the signer's key come back exactly as written (it does not verify SM2 itself: bytes equal to
those signed verify by construction), and a later change of a signed byte is stored like any
other (the card does not seal a signed record). The signer key is an ephemeral demo key made
for the case; it is no one's real key.
"""

from __future__ import annotations

import functools
import secrets

from conformance import crypto
from conformance.apdu import CommandAPDU, ResponseAPDU
from conformance.cases.common import grant_families, make, read_binary, slug, sw_choice
from conformance.cases.framework import Case, CaseContext
from conformance.messages import Msg, msg
from conformance.model import codecs
from conformance.model.codecs import Coding
from conformance.model.profile import CardProfile
from conformance.model.schema import LayoutField
from conformance.model.tree import df_of, indexed_files, other_keys

CLAUSE = "REFERENCE.md §1 (DF03 EE01–EE03, ED01–ED05); WS/T 543 (evidence §2.3, Appendix A)"
WRITE_CHUNK = 0xFF  # the short-APDU limit: the chunking a terminal writes with
READ_CHUNK = 0x80  # the evidence's DLL reads EE/ED in 0x80-byte chunks

SIGNATURE_CHOICE = (
    "REFERENCE.md §4 [choice]: the 190-byte field after the signature carries the signer's "
    "public key x‖y in its first 64 bytes (the rest is written 00); the signature is SM2 over "
    "SM3 with the default ID 1234567812345678, r‖s, over every byte before the signature field."
)


# --------------------------------------------------------------------------- helpers


def _field_name(field: LayoutField) -> str | Msg:
    return msg("what.item", n=field.item) if field.item is not None else str(field.name)


def _role(profile: CardProfile, path: str, role: str) -> LayoutField | None:
    layout = profile.layout(profile.file(path).layout or "")
    return next((f for f in layout if f.role == role), None)


def _update(ctx: CaseContext, offset: int, data: bytes) -> tuple[CommandAPDU, ResponseAPDU]:
    command = ctx.apdu("update_binary", offset >> 8, offset & 0xFF, data)
    return command, ctx.send(command)


def _write(ctx: CaseContext, path: str, offset: int, data: bytes, chunk: int = WRITE_CHUNK) -> None:
    """UPDATE BINARY of ``data`` at ``offset`` in chunks; FAIL unless each answers 9000."""
    for start in range(0, len(data), chunk):
        at = offset + start
        command, response = _update(ctx, at, data[start : start + chunk])
        ctx.expect_sw(
            response, "ok", what=msg("what.rec.update_binary_of_at",
                                     path=path, at=at, command=command.hex()[:14])
        )


def _read(ctx: CaseContext, path: str, offset: int, length: int, chunk: int = WRITE_CHUNK) -> bytes:
    """READ BINARY of ``length`` bytes in chunks; FAIL unless each answers 9000 in full."""
    out = bytearray()
    while len(out) < length:
        at = offset + len(out)
        n = min(chunk, length - len(out))
        response = ctx.expect_sw(
            read_binary(ctx, at, n), "ok", what=msg("what.rec.read_binary_of_at_le",
                                                    path=path, at=at, le=f"{n:02X}")
        )
        ctx.check(
            len(response.data) == n,
            msg("host.binary_short", path=path, at=at, length=len(response.data), expected=n),
            expected=f"{n} bytes", measured=f"{len(response.data)} bytes",
        )
        out += response.data
    return bytes(out)


def _read_original(ctx: CaseContext, path: str) -> bytes:
    with ctx.precondition(msg("what.rec.read_as_it_is", path=path)):
        return _read(ctx, path, 0, ctx.profile.file(path).size or 0)


def _first_difference(
    ctx: CaseContext, path: str, got: bytes, want: bytes, start: int = 0
) -> Msg:
    """Where two images first differ (at or after ``start``), named by the layout field."""
    return _difference(ctx, path, got, want, start)[0]


def _difference(
    ctx: CaseContext, path: str, got: bytes, want: bytes, start: int = 0
) -> tuple[Msg, str, str]:
    """The first difference (see _first_difference) with the 8 bytes written and read there."""
    at = next(
        (i for i in range(start, min(len(got), len(want))) if got[i] != want[i]),
        min(len(got), len(want)),
    )
    layout = ctx.profile.layout(ctx.profile.file(path).layout or "")
    field = next((f for f in layout if f.offset <= at < f.offset + f.length), None)
    g = got[at : at + 8].hex().upper() or "—"
    w = want[at : at + 8].hex().upper() or "—"
    if field is None:
        return msg("diff.at", at=at, got=g, written=w), f"@{at}: {w}", f"@{at}: {g}"
    return (msg("diff.at_field", at=at, field=_field_name(field), byte=at - field.offset,
                got=g, written=w), f"@{at}: {w}", f"@{at}: {g}")


def _check_image(ctx: CaseContext, path: str, got: bytes, want: bytes, what: str | Msg) -> None:
    if got != want:
        difference, written, read = _difference(ctx, path, got, want)
        ctx.fail(msg("state.image_differs", path=path, what=what, difference=difference),
                 expected=written, measured=read)


def _restore(ctx: CaseContext, path: str, original: bytes) -> None:
    _write(ctx, path, 0, original)
    _check_image(
        ctx,
        path,
        _read(ctx, path, 0, len(original)),
        original,
        msg("what.rec.is_not_as_before_after"),
    )


def fill_value(field: LayoutField, seed: int) -> str:
    """A value that fills the whole field (no padding byte left), valid for its coding."""
    coding = Coding(field.coding)
    if coding is Coding.CN:
        return "".join(str((seed + i) % 10) for i in range(2 * field.length))
    if coding is Coding.AN:
        text = "健康档案"[: field.length // 2] * (field.length // 8 + 1)
        text = text[: field.length // 2]
        return text + str(seed % 10) * (field.length - 2 * len(text))
    return bytes((seed + 3 * i) % 254 + 1 for i in range(field.length)).hex().upper()


def _encode(field: LayoutField, value: str) -> bytes:
    return codecs.encode(Coding(field.coding), value, field.length)


def probe_fields(profile: CardProfile, path: str, chunk: int = WRITE_CHUNK) -> list[LayoutField]:
    """The fields worth a write: first, last, signature fields, and those at every chunk
    boundary (straddling it, or on both sides when a field starts exactly there)."""
    ef = profile.file(path)
    layout = sorted(profile.layout(ef.layout or ""), key=lambda f: f.offset)
    size = ef.size or 0
    chosen = [layout[0], layout[-1], *(f for f in layout if f.role)]
    for boundary in range(chunk, size, chunk):
        chosen += [
            f for f in layout if f.offset < boundary <= f.offset + f.length or f.offset == boundary
        ]
    return sorted({f.offset: f for f in chosen}.values(), key=lambda f: f.offset)


@functools.cache
def _demo_signer() -> tuple[bytes, bytes]:
    """An ephemeral SM2 key pair (private, public x‖y), drawn once per process: DEMO ONLY."""
    while True:
        private = secrets.token_bytes(32)
        try:
            return private, crypto.sm2_keypair_from_private(private)
        except ValueError:  # out of [1, n-2]: draw again
            continue


@functools.lru_cache(maxsize=16)
def _sign(private: bytes, message: bytes) -> bytes:
    """SM2 over SM3 with the default ID (REFERENCE.md §4); memoised, since the signed record
    of a layout is the same on every file and every run."""
    return crypto.sm2_sign(private, message)



# --------------------------------------------------------------------------- cases


def _file_cases(profile: CardProfile, path: str, out: list[Case]) -> None:
    ef = profile.file(path)
    size = ef.size or 0
    read, update = ef.access.read, ef.access.update
    sid = f"REC-{slug(path)}"
    rw = (
        f"card reset; {read} and {update} granted in {df_of(path)}; the file's bytes are "
        "written back"
    )

    @make(
        out,
        f"{sid}-001",
        "REC",
        f"{path} 大小 {size} 字节与文件末尾",
        f"{path} is {size} bytes; writes past its end are refused",
        CLAUSE + "; REFERENCE.md §5 READ/UPDATE BINARY (<sw:offset_beyond_end>, <sw:wrong_length>)",
        f"READ BINARY at {size - 1} returns 1 byte and at {size} answers <sw:offset_beyond_end>; "
        "UPDATE BINARY "
        f"at {size} and {size + 1} answers <sw:offset_beyond_end> and 2 bytes at {size - 1} answer "
        "<sw:wrong_length> without "
        f"writing; the last byte ({size - 1}) can be written and reads back.",
        purpose_zh=f"在偏移 {size - 1} 读二进制返回 1 字节，在 {size} 应答 <sw:offset_beyond_end>"
                   f"；在 {size}"
                   f" 和 {size + 1} 更新二进制应答 <sw:offset_beyond_end>，在 {size - 1} 写 2 字节"
                   "应答"
                   f" <sw:wrong_length> 且不写入；最后一个字节（{size - 1}）可写入并读回。",
        preconditions=rw,
        expected_sw=("ok", "offset_beyond_end", "wrong_length"),
        severity="critical",
        reference_choice=sw_choice("offset_beyond_end", "wrong_length"),
    )
    def size_and_end(ctx: CaseContext, path: str = path) -> None:
        size = ctx.profile.file(path).size or 0
        grant_families(ctx, path, [read, update])
        response = ctx.expect_sw(
            read_binary(ctx, size - 1),
            "ok",
            what=msg("what.rec.read_binary_of_at_its", path=path, offset=size - 1),
        )
        ctx.check(
            len(response.data) == 1,
            msg("len.last_byte_size", at=size - 1, length=len(response.data), path=path,
                size=size),
            expected="1 byte", measured=f"{len(response.data)} bytes",
        )
        last = response.data
        ctx.expect_sw(
            read_binary(ctx, size),
            "offset_beyond_end",
            what=msg("what.rec.read_binary_of_at_its_2", path=path, size=size),
        )

        def undo() -> None:
            _write(ctx, path, size - 1, last)

        with ctx.restoring(msg("what.rec.the_last_byte_of", path=path), undo):
            for offset, where in ((size, msg("label.at_end")), (size + 1, msg("label.past_end"))):
                command, response = _update(ctx, offset, b"\x00")
                ctx.expect_sw(response, "offset_beyond_end", what=msg("what.rec.command_where",
                                                                      command=command.hex(),
                                                                      where=where))
            flipped = bytes([last[0] ^ 0xFF])
            command, response = _update(ctx, size - 1, flipped + b"\x00")
            ctx.expect_sw(
                response, "wrong_length", what=msg("what.rec.two_bytes_at_last",
                                                   command=command.hex())
            )
            now = _read(ctx, path, size - 1, 1)
            ctx.check(
                now == last,
                msg("state.refused_update_changed", path=path, before=last.hex().upper(),
                    after=now.hex().upper()),
                expected=last.hex().upper(), measured=now.hex().upper(),
            )
            _write(ctx, path, size - 1, flipped)
            now = _read(ctx, path, size - 1, 1)
            ctx.check(
                now == flipped,
                msg("state.reads_back", what=msg("what.last_byte", path=path),
                    got=now.hex().upper(), written=flipped.hex().upper()),
                expected=flipped.hex().upper(), measured=now.hex().upper(),
            )

    fields = probe_fields(profile, path)
    listed = ", ".join(f"{_field_name(f)} @{f.offset}" for f in fields)

    @make(
        out,
        f"{sid}-002",
        "REC",
        f"{path} 按数据项偏移写入并读回",
        f"{path}: UPDATE BINARY at the layout's item offsets reads back exactly",
        CLAUSE + "; REFERENCE.md §5 UPDATE BINARY",
        f"With {update}, UPDATE BINARY of whole-field values at the offsets of {listed} "
        "(first and last byte of the file, every 0xFF chunk boundary, the signature fields), "
        "each value valid for the field's coding, reads back byte for byte, the rest of the "
        "file untouched.",
        purpose_zh=f"以 {update} 在 {listed} 的偏移处（文件的首末字节、每个 0xFF 分块边界、签名字"
                   "段）更新整个字段的取值（符合字"
                   "段编码），逐字节读回一致，文件其余部分不变。",
        preconditions=rw,
        expected_sw=("ok",),
        severity="critical",
    )
    def item_offsets(ctx: CaseContext, path: str = path) -> None:
        grant_families(ctx, path, [read, update])
        original = _read_original(ctx, path)
        chosen = probe_fields(ctx.profile, path)
        expected = bytearray(original)
        for seed, field in enumerate(chosen, start=1):
            expected[field.offset : field.offset + field.length] = _encode(
                field, fill_value(field, seed)
            )
        with ctx.restoring(path, lambda: _restore(ctx, path, original)):
            for field in chosen:
                _write(
                    ctx,
                    path,
                    field.offset,
                    bytes(expected[field.offset : field.offset + field.length]),
                )
            got = _read(ctx, path, 0, len(original))
            _check_image(ctx, path, got, bytes(expected),
                         msg("what.rec.after_writes_at_item_offsets"))

    @make(
        out,
        f"{sid}-003",
        "REC",
        f"{path} 整文件写入并以不同分块读回",
        f"{path}: a whole-file image survives a different chunking",
        CLAUSE + "; REFERENCE.md §5 READ/UPDATE BINARY",
        f"An image of all {size} bytes (each byte changed) written in 0xFF-byte chunks reads "
        "back identical in 0x80-byte chunks: the card keeps every byte, at every chunk "
        "boundary, up to the last.",
        purpose_zh=f"以 0xFF 字节分块写入全部 {size} 字节的映像（每个字节都改变），以 0x80 字节分"
                   "块读回完全一致：卡片在每个分块边界直"
                   "至最后一个字节都保存了每个字节。",
        preconditions=rw,
        expected_sw=("ok",),
        severity="critical",
    )
    def whole_image(ctx: CaseContext, path: str = path) -> None:
        grant_families(ctx, path, [read, update])
        original = _read_original(ctx, path)
        image = bytes(b ^ (1 + i % 0xFF) for i, b in enumerate(original))
        with ctx.restoring(path, lambda: _restore(ctx, path, original)):
            _write(ctx, path, 0, image, WRITE_CHUNK)
            got = _read(ctx, path, 0, len(image), READ_CHUNK)
            _check_image(ctx, path, got, image, msg("what.rec.read_back_in_0x80_byte"))

    keys = ", ".join(other_keys(profile, path, read))

    @make(
        out,
        f"{sid}-004",
        "REC",
        f"{path} 无 {read} 不能读取",
        f"{path}: reading needs {read}",
        CLAUSE + "; REFERENCE.md §3 (an update right does not grant reading)",
        f"READ BINARY of {path} answers <sw:security_not_satisfied> with no right, and still "
        "<sw:security_not_satisfied> with every other "
        f"key of {df_of(path)} granted ({keys}).",
        purpose_zh=f"未获权限时读二进制 {path} 应答 <sw:security_not_satisfied>，获得 {df_of(path)}"
                   " 的"
                   f"其他所有密钥（{keys}）后仍应答 <sw:security_not_satisfied>。",
        preconditions=f"card reset; then {keys} granted in {df_of(path)}",
        expected_sw=("security_not_satisfied",),
        severity="critical",
        reference_choice=sw_choice("security_not_satisfied"),
    )
    def read_needs_key(ctx: CaseContext, path: str = path) -> None:
        grant_families(ctx, path, [])
        ctx.expect_sw(
            read_binary(ctx, 0),
            "security_not_satisfied",
            what=msg("what.rec.read_binary_of_with_no", path=path),
        )
        others = other_keys(ctx.profile, path, read)
        grant_families(ctx, path, list(others))
        ctx.expect_sw(
            read_binary(ctx, 0),
            "security_not_satisfied",
            what=msg("what.rec.read_binary_of_with", path=path, rights=', '.join(others)),
        )

    writers = ", ".join([read or "", *other_keys(profile, path, read, update)])

    @make(
        out,
        f"{sid}-005",
        "REC",
        f"{path} 无 {update} 不能写入",
        f"{path}: writing needs {update}",
        CLAUSE + "; REFERENCE.md §3",
        f"UPDATE BINARY of {path} answers <sw:security_not_satisfied> with every key of "
        f"{df_of(path)} but "
        f"{update} granted "
        f"({writers}); the bytes written are the file's own, so nothing changes even if a "
        "card wrongly accepts them.",
        purpose_zh=f"获得 {df_of(path)} 除 {update} 以外的所有密钥（{writers}）时，更新二进制 "
                   f"{path}"
                   " 应答 <s"
                   "w:security_not_satisfied>；写入的是文件自身的字节，即使卡片错误接受也不会改变内容。",
        preconditions=f"card reset; {writers} granted in {df_of(path)}",
        expected_sw=("security_not_satisfied",),
        severity="critical",
        reference_choice=sw_choice("security_not_satisfied"),
    )
    def write_needs_key(ctx: CaseContext, path: str = path) -> None:
        grant_families(ctx, path, [read, *other_keys(ctx.profile, path, read, update)])
        with ctx.precondition(msg("what.rec.read_binary_of", path=path)):
            head = _read(ctx, path, 0, 16)
        command, response = _update(ctx, 0, head)
        ctx.expect_sw(
            response,
            "security_not_satisfied",
            what=msg("what.rec.command_with_rights",
                     command=command.hex()[:14], rights=', '.join(ctx.session.granted)),
        )

    sig = _role(profile, path, "signature")
    signer = _role(profile, path, "signer_key")
    if sig is None or signer is None:
        return

    @make(
        out,
        f"{sid}-006",
        "REC",
        f"{path} 签名记录经卡片存取后逐字节不变",
        f"{path}: a signed record comes back from the card exactly as signed",
        "REFERENCE.md §4 record signatures [choice]; WS/T 543 (evidence §2.3, §4.6, Appendix A)",
        f"A record whose bytes 0–{sig.offset - 1} are signed with a demo SM2 key (signature "
        f"r‖s at {sig.offset}, the signer's public key at {signer.offset}) is written in "
        "0xFF-byte chunks and read back in 0x80-byte chunks: the signed bytes, the signature "
        "and the key come back exactly as written, so a terminal verifies the record as it "
        "was signed. A later change of the last signed byte is stored like any other byte "
        "(the card does not seal a signed record), and writing it back restores the signed "
        "record.",
        purpose_zh=f"字节 0–{sig.offset - 1} 以演示 SM2 密钥签名的记录（签名 r‖s 位于 {sig.offset}"
                   "，签名者公钥"
                   f"位于 {signer.offset}）以 0xFF 字节分块写入、以 0x80 字节分块读回：签名字节、"
                   "签名与公钥与写入时完全相同，"
                   "终端可按签名验证该记录。之后改变最后一个签名字节会像其他字节一样被保存（卡片不封存已签名记录），写回后恢复为签名记录。",
        applicability="record_signatures",
        preconditions=rw + "; an ephemeral demo SM2 signer key (DEMO ONLY)",
        expected_sw=("ok",),
        severity="critical",
        reference_choice=SIGNATURE_CHOICE,
    )
    def signed_record(ctx: CaseContext, path: str = path) -> None:
        size = ctx.profile.file(path).size or 0
        grant_families(ctx, path, [read, update])
        original = _read_original(ctx, path)
        private, public = _demo_signer()
        ctx.note(f"demo record signer (DEMO ONLY) public key {public.hex().upper()}")
        layout = [
            f
            for f in ctx.profile.layout(ctx.profile.file(path).layout or "")
            if f.offset < sig.offset
        ]
        body = bytearray(original[: sig.offset])
        for seed, field in enumerate(layout, start=1):
            body[field.offset : field.offset + field.length] = _encode(
                field, fill_value(field, seed)
            )
        signed = bytes(body)
        image = bytearray(original)
        image[: sig.offset] = signed
        image[sig.offset : sig.offset + sig.length] = _sign(private, signed).ljust(
            sig.length, b"\x00"
        )
        image[signer.offset : signer.offset + signer.length] = public.ljust(signer.length, b"\x00")
        image = bytes(image[:size])
        # what a verifier reads, in the order it depends on them
        parts = (
            ("signed bytes", 0, sig.offset),
            ("signature", sig.offset, sig.offset + sig.length),
            ("signer's public key", signer.offset, signer.offset + signer.length),
        )

        with ctx.restoring(path, lambda: _restore(ctx, path, original)):
            _write(ctx, path, 0, image, WRITE_CHUNK)
            got = _read(ctx, path, 0, size, READ_CHUNK)
            for label, start, end in parts:
                if got[start:end] != image[start:end]:
                    ctx.fail(
                        msg("state.signed_part_differs", label=label, path=path,
                            difference=_first_difference(ctx, path, got[:end], image[:end],
                                                         start)),
                        expected=f"{label} as written", measured="different bytes",
                    )
            _check_image(ctx, path, got, image, msg("what.rec.signed_record_read_back"))
            last = sig.offset - 1
            changed = bytes([image[last] ^ 0x01])
            _write(ctx, path, last, changed)
            now = _read(ctx, path, last, 1)
            ctx.check(
                now == changed,
                msg("state.reads_back", what=msg("what.last_signed_byte", path=path, at=last),
                    got=now.hex().upper(), written=changed.hex().upper()),
                expected=changed.hex().upper(), measured=now.hex().upper(),
            )
            _write(ctx, path, last, image[last : last + 1])
            _check_image(
                ctx,
                path,
                _read(ctx, path, 0, size, READ_CHUNK),
                image,
                msg("what.rec.after_its_last_signed_byte"),
            )


def cases(profile: CardProfile) -> list[Case]:
    out: list[Case] = []
    for path in indexed_files(profile):
        _file_cases(profile, path, out)
    return out
