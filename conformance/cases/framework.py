"""What a conformance case is: its metadata (the test specification) and its body.

A case body receives a CaseContext and judges the card only through the APDU interface.
It signals its verdict by how it ends: returning is PASS, `ctx.fail` / a failed expectation is
FAIL, `ctx.inconclusive` (or a failed precondition) is INCONCLUSIVE. Mapping exceptions to
verdicts happens in one place, `conformance.runner.judge`.

A FAIL also says where it fired (:func:`failed_at`): at the case's own expectation (``own``),
in a step the case shares with others (``step: READ RECORD 3 of DF01/EF05``, a read inside
``with ctx.step(…)``), or as a raw protocol error that escaped the body (``error: ApduError``).
The verdict is the same; the kill matrix counts only ``own`` as the case catching a defect.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conformance.apdu import ApduError, ApduFormatError, CommandAPDU, ResponseAPDU, sw_hex
from conformance.host.session import HostError
from conformance.iso7816 import describe_sw
from conformance.messages import Bilingual, Msg, as_msg, msg, msg_of
from conformance.model.codecs import CodingError

if TYPE_CHECKING:
    from conformance.host.session import HealthCardSession
    from conformance.model.products import Product
    from conformance.model.profile import CardProfile
    from conformance.transport.layers import TraceLayer

GROUPS = {
    "ATR": ("复位应答", "Answer to reset"),
    "CMD": ("命令", "ISO/IEC 7816-4 command behaviour"),
    "FS": ("文件结构", "File structure"),
    "DATA": ("数据元", "Data items"),
    "SEC": ("安全", "Security"),
    "CYC": ("循环文件", "Cyclic files"),
    "IDX": ("索引文件", "Index files"),
    "REC": ("诊疗记录", "Medical records (EE/ED)"),
    "PIN": ("个人识别码", "PIN"),
    "COB": ("联名卡", "Co-branded cards"),
    "PERF": ("性能", "Performance"),
}


OWN = "own"
"""``failed_at`` of a FAIL raised by the case's own expectation."""
STEP_PREFIX = "step: "
STATUS_WORDS_CHOICE = "status_words"
"""The [choice] §5's status word table rests on (REFERENCE.md §5 heading)."""
SUCCESS = frozenset({"ok", "bytes_available"})
ERROR_PREFIX = "error: "


class CaseFailure(Bilingual, AssertionError):
    """The card broke a requirement; ``step`` names the shared step it fired in, if any.

    The message is a :class:`Msg` (Chinese and English from one template); ``expected`` and
    ``measured`` are what the report's columns show."""

    def __init__(
        self, message: str | Msg, *, step: str | None = None, expected: str = "",
        measured: str = "",
    ) -> None:
        super().__init__(message, expected=expected, measured=measured)
        self.step = step


def _tag_step(exc: BaseException, what: str | Msg) -> None:
    """Record on an exception the shared step it escaped from (the innermost step wins)."""
    if getattr(exc, "step", None) is None:
        exc.step = as_msg(what).en  # type: ignore[attr-defined]


def failed_at(exc: BaseException) -> str:
    """Where a failing case fired: ``own``, ``step: <what>`` or ``error: <exception type>``."""
    step = getattr(exc, "step", None)
    if step is not None:
        return STEP_PREFIX + step
    if isinstance(exc, CaseFailure):
        return OWN
    return ERROR_PREFIX + type(exc).__name__


class Inconclusive(Bilingual):
    """A precondition could not be established, or the bench cannot carry the test (a
    :class:`Msg` with ``expected`` / ``measured``, as for CaseFailure)."""


@dataclass(frozen=True)
class Case:
    """One conformance case: metadata rendered into the catalogue and the report, and a body."""

    id: str
    group: str
    title_zh: str
    title_en: str
    clause: str
    purpose: str
    body: Callable[[CaseContext], None] = field(repr=False, compare=False)
    applicability: str = "True"
    preconditions: str = "card reset; no rights granted"
    expected_sw: tuple[str, ...] = ()
    mandatory: bool = True
    destructive: bool = False
    choices: tuple[str, ...] = ()
    """Keys of the profile's [choice] table (``choices:``) the case's verdict rests on."""
    interpretations: tuple[str, ...] = ()
    """Keys of the profile's ``interpretations:``: readings the case adds where the text is
    silent."""
    choice_notes: tuple[str, ...] = ()
    """The cited choices, then the interpretations, in English (set by the catalogue)."""
    choice_notes_zh: tuple[str, ...] = ()
    """The same notes in Chinese."""
    severity: str = "normal"
    requirement: str = ""
    """Key of the profile's requirement table (``requirements:``) this case tests."""
    requirement_zh: str = ""
    requirement_en: str = ""
    source: str = ""
    """Where the requirement comes from: a clause, or "profile [choice] <name> <version>"."""
    purpose_zh: str = ""

    def __repr__(self) -> str:  # pytest and Allure show it as the test parameter
        return self.id

    @property
    def reference_choice(self) -> str:
        """What the verdict rests on beyond the requirement: the choices and interpretations."""
        return " ".join(self.choice_notes)

    @property
    def reference_choice_zh(self) -> str:
        return "".join(self.choice_notes_zh)

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"case {self.id}: unknown group {self.group}")

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "title_zh": self.title_zh,
            "title_en": self.title_en,
            "clause": self.clause,
            "purpose": self.purpose,
            "applicability": self.applicability,
            "preconditions": self.preconditions,
            "expected_sw": list(self.expected_sw),
            "mandatory": self.mandatory,
            "destructive": self.destructive,
            "choices": list(self.choices),
            "interpretations": list(self.interpretations),
            "reference_choice": self.reference_choice,
            "reference_choice_zh": self.reference_choice_zh,
            "severity": self.severity,
            "requirement": self.requirement,
            "requirement_zh": self.requirement_zh,
            "requirement_en": self.requirement_en,
            "source": self.source,
            "purpose_zh": self.purpose_zh,
        }


class CaseContext:
    """What a case body works with: the host session, raw APDUs, the profile and the ICS."""

    def __init__(
        self,
        *,
        session: HealthCardSession,
        trace: TraceLayer,
        profile: CardProfile,
        product: Product,
        parameters: dict[str, Any],
        choices: str = "enforce",
    ):
        self.session = session
        self.trace = trace
        self.profile = profile
        self.product = product
        self.parameters = parameters
        self.choices = choices
        self.observations: list[str] = []
        self.observations_zh: list[str] = []
        self.measurements: list[dict[str, Any]] = []
        """Measurements with limits (PERF cases): one dict each, see cases/measure.py."""

    # -- sending -----------------------------------------------------------------------
    def send(self, apdu: CommandAPDU | bytes, *, raw: bool = False) -> ResponseAPDU:
        """Send one APDU; T=0 procedure bytes are handled unless raw (then 61xx/6Cxx show)."""
        data = apdu.to_bytes() if isinstance(apdu, CommandAPDU) else apdu
        answer = self.trace.raw(data) if raw else self.trace.transmit(data)
        return ResponseAPDU.parse(answer)

    def apdu(
        self, command: str, p1: int, p2: int, data: bytes = b"", le: int | None = None
    ) -> CommandAPDU:
        """A command by its profile name (CLA and INS come from the profile)."""
        cla, ins = self.profile.command(command)
        return CommandAPDU(cla, ins, p1, p2, data, le)

    def select(self, path: str) -> None:
        """Select a DF or EF from the MF down (a precondition: a refusal is INCONCLUSIVE)."""
        with self.precondition(msg("act.select", path=path)):
            self.session.select(path)

    # -- judging -----------------------------------------------------------------------
    def sw(self, name: str) -> int:
        return self.profile.sw(name)

    def _sw_matches(self, response: ResponseAPDU, name: str) -> bool:
        return sw_hex(response.sw).startswith(self.profile.spec.status_words[name])

    def _wanted(self, names: tuple[str, ...]) -> Msg:
        """The status words named, each with its meaning (its name; in Chinese the ISO
        meaning of a full status word)."""
        items = [self._named(n) for n in names]
        wanted = items[-1]
        for item in reversed(items[:-1]):
            wanted = msg("sw.or", a=item, b=wanted)
        return wanted

    def _named(self, name: str) -> Msg:
        text = self.profile.sw_text(name)
        meaning = describe_sw(int(text, 16))[1] if "x" not in text else name
        return msg("sw.named", sw=text, name_en=name, name_zh=meaning)

    def _hex(self, names: tuple[str, ...]) -> str:
        """The status words named, in hex only (the report's expected column)."""
        return " / ".join(self.profile.sw_text(n) for n in names)

    def expect_sw(
        self, response: ResponseAPDU, *names: str, what: str | Msg, choice: str | None = None
    ) -> ResponseAPDU:
        """FAIL unless the response carries one of the named status words (or SW prefixes).

        ``choice`` names the [choice] of the profile (``choices:``) the expectation rests on:
        under a plan with ``choices: observe`` a deviation is recorded, not failed. By
        default an expectation of error status words only rests on §5's table
        (``status_words``), itself a [choice]; one that expects success rests on none.
        """
        if any(self._sw_matches(response, name) for name in names):
            return response
        got = sw_hex(response.sw)
        message = msg("sw.expected", what=what, expected=self._wanted(names), sw=got)
        if choice is None:
            choice = STATUS_WORDS_CHOICE if set(names).isdisjoint(SUCCESS) else ""
        if choice and response.sw == 0x9000:
            choice = ""  # success where the text refuses is never a mere choice
        self._deviate(message, choice, expected=self._hex(names), measured=got)
        return response

    def expect_situation(
        self, response: ResponseAPDU, situation: str, *, what: str | Msg, choice: str = ""
    ) -> ResponseAPDU:
        """Judge a response against a situation of the profile (``situations:``): its status
        word passes; an alternative the text also admits passes with an observation."""
        spec = self.profile.spec.situations[situation]
        if self._sw_matches(response, spec.sw):
            return response
        got = sw_hex(response.sw)
        for alternative in spec.alternatives:
            if self._sw_matches(response, alternative):
                self.observe(msg(
                    "sw.alternative", what=what, sw=got, alternative=alternative,
                    reference=self._wanted((spec.sw,)), rests_on=spec.rests_on,
                ))
                return response
        if spec.any_error and response.sw != 0x9000 and not self._sw_matches(
            response, "bytes_available"
        ):
            self.observe(msg("sw.any_error", what=what, sw=got, rests_on=spec.rests_on))
            return response
        allowed = (spec.sw, *spec.alternatives)
        key = "sw.expected_or_error" if spec.any_error else "sw.expected"
        self._deviate(msg(key, what=what, expected=self._wanted(allowed), sw=got), choice,
                      expected=self._hex(allowed), measured=got)
        return response

    def _deviate(
        self, message: str | Msg, choice: str, *, expected: str = "", measured: str = ""
    ) -> None:
        """A deviation: FAIL, unless it departs only from a [choice] the plan observes."""
        if choice and choice not in self.profile.spec.choices:
            raise KeyError(f"unknown [choice] {choice!r}: not in the profile's choices")
        if choice and self.choices == "observe":
            self.observe(msg("choice.not_followed", choice=choice, message=as_msg(message)))
            return
        raise CaseFailure(message, expected=expected, measured=measured)

    def observe(self, text: str | Msg) -> None:
        """Record what the card answered where the text allows more than one answer."""
        message = as_msg(text)
        self.observations.append(message.en)
        self.observations_zh.append(message.zh)
        self.trace.annotate(f"observation: {message.en}")

    def check(
        self, condition: bool, message: str | Msg, *, choice: str = "", expected: object = "",
        measured: object = "",
    ) -> None:
        """FAIL unless ``condition``; ``choice`` as for :meth:`expect_sw`; ``expected`` and
        ``measured`` are shown in the report's columns."""
        if not condition:
            self._deviate(message, choice, expected=str(expected), measured=str(measured))

    def fail(
        self, message: str | Msg, *, choice: str = "", expected: object = "",
        measured: object = "",
    ) -> None:
        self._deviate(message, choice, expected=str(expected), measured=str(measured))

    def inconclusive(
        self, message: str | Msg, *, expected: object = "", measured: object = ""
    ) -> None:
        raise Inconclusive(message, expected=str(expected), measured=str(measured))

    @contextlib.contextmanager
    def step(self, what: str | Msg) -> Iterator[None]:
        """A step the case shares with others (a read, a decode): a failure inside is still a
        FAIL, but it is tagged as fired in ``what``, not by the case's own expectation."""
        try:
            yield
        except (CaseFailure, ApduError, HostError, CodingError, ApduFormatError) as exc:
            _tag_step(exc, what)
            raise

    @contextlib.contextmanager
    def expecting(self, what: str | Msg) -> Iterator[None]:
        """The case's own expectation is that the session calls inside succeed: a refusal
        (ApduError) or a malformed answer (HostError, CodingError) is FAIL by this case."""
        try:
            yield
        except (ApduError, HostError, CodingError, ApduFormatError) as exc:
            expected, measured = shown(exc)
            raise CaseFailure(msg("expecting.failed", what=what, error=msg_of(exc)),
                              expected=expected, measured=measured) from exc

    @contextlib.contextmanager
    def precondition(self, what: str | Msg) -> Iterator[None]:
        """Errors inside are INCONCLUSIVE: the state the case needs could not be established."""
        try:
            yield
        except (ApduError, HostError, CaseFailure, CodingError, ApduFormatError) as exc:
            expected, measured = shown(exc)
            raise Inconclusive(msg("precondition.failed", what=what, error=msg_of(exc)),
                               expected=expected, measured=measured) from exc

    def note(self, text: str) -> None:
        self.trace.annotate(text)

    @contextlib.contextmanager
    def restoring(self, what: str | Msg, undo: Callable[[], None]) -> Iterator[None]:
        """Run `undo` after the block, so a case leaves the card as it found it.

        When the block already ended with a verdict, a failing `undo` is only noted (the
        first failure is the verdict); otherwise the case is INCONCLUSIVE, because the card
        could not be put back and the lab must know.
        """
        try:
            yield
        except (CaseFailure, Inconclusive) as verdict:
            try:
                undo()
            except Exception as exc:
                again = type(verdict)(
                    msg("restore.failed_too", verdict=verdict.msg, what=what, error=msg_of(exc)),
                    expected=verdict.expected, measured=verdict.measured,
                )
                again.step = getattr(verdict, "step", None)  # type: ignore[union-attr]
                raise again from verdict
            raise
        except BaseException:
            try:
                undo()
            except Exception as exc:
                self.note(msg("restore.left_modified", what=what, error=msg_of(exc)).en)
            raise
        try:
            undo()
        except (ApduError, HostError, CaseFailure, Inconclusive, CodingError) as exc:
            expected, measured = shown(exc)
            raise Inconclusive(msg("restore.failed", what=what, error=msg_of(exc)),
                               expected=expected, measured=measured) from exc


def shown(exc: BaseException) -> tuple[str, str]:
    """(expected, measured) display strings an exception carries: a refused status word is
    measured as its SW; a case exception carries its own."""
    if isinstance(exc, ApduError):
        return "", sw_hex(exc.sw)
    return getattr(exc, "expected", ""), getattr(exc, "measured", "")
