"""Composable transport layers: T=0 response handling, and the APDU trace every verdict cites.

Each layer is itself a Transport wrapping an inner one, so a bench is assembled as
``TraceLayer(T0Layer(pcsc_or_inprocess))`` (see :func:`build_stack`). The layers work on raw
bytes: they must carry malformed APDUs that a case sends on purpose, unchanged (the APDUs
they build themselves, GET RESPONSE and a resend with the right Le, come from
:class:`~conformance.apdu.CommandAPDU`).

- :class:`T0Layer` is the one audited place for T=0 (``61xx`` → GET RESPONSE, ``6Cxx`` → resend
  with Le), and notes every physical exchange in the list it is given. GET RESPONSE's CLA/INS
  and the two SW1 values come from the profile (:meth:`T0Rules.from_profile`).
- :class:`TraceLayer` records every exchange with monotonic timestamps, the logical exchange
  (what the case sent) with the wire exchanges beneath it, secrets masked by a
  :class:`~conformance.transport.redact.Redactor` whenever entries are read out (once per
  case, when its evidence is written: the hot path only keeps bytes and timestamps).

Between a case and the card these two are all that runs: on a latency measurement their
Python is the bench's own noise, so each exchange crosses them in one call each.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conformance.apdu import CommandAPDU
from conformance.iso7816 import LE_WHOLE
from conformance.transport.base import BenchError, CaseTimeout, Transport
from conformance.transport.redact import Redactor

if TYPE_CHECKING:
    from conformance.model.profile import CardProfile

__all__ = [
    "T0Layer",
    "T0Rules",
    "TraceEntry",
    "TraceLayer",
    "Wire",
    "build_stack",
    "from_jsonl",
    "to_jsonl",
]

Wire = tuple[bytes, bytes, float]
"""One physical exchange as a T0Layer notes it: (command, response, end time)."""


@dataclass(frozen=True)
class T0Rules:
    """The T=0 wire facts of a profile: GET RESPONSE's CLA and INS, and the SW1 values of
    "bytes available" (61) and "wrong Le" (6C)."""

    get_response_cla: int
    get_response_ins: int
    bytes_available: int
    wrong_le: int

    @classmethod
    def from_profile(cls, profile: CardProfile) -> T0Rules:
        cla, ins = profile.command("get_response")
        return cls(
            cla,
            ins,
            int(profile.sw_prefix("bytes_available")[:2], 16),
            int(profile.sw_prefix("wrong_le")[:2], 16),
        )

    def get_response(self, sw2: int) -> bytes:
        """GET RESPONSE for the SW2 of a 61xx (P1 = P2 = 00; 00 asks for 256 bytes)."""
        return CommandAPDU(self.get_response_cla, self.get_response_ins, 0, 0,
                           le=sw2 or LE_WHOLE).to_bytes()


def _is_short_case2(apdu: bytes) -> bool:
    """CLA INS P1 P2 Le: the only form a 6Cxx can be answered by resending with Le = xx."""
    return len(apdu) == 5


# --------------------------------------------------------------------------- T=0


class T0Layer:
    """Handles the T=0 status words so that cases see one logical exchange per command.

    - ``61xx``: GET RESPONSE (``00 C0 00 00 xx`` in the reference profile), repeated while
      the card keeps answering 61xx, the data concatenated; at most ``max_rounds`` GET
      RESPONSEs, then BenchError (a card that never stops would otherwise hang the run).
    - ``6Cxx`` to a short case-2 command (when ``auto_6c``): resend it once with Le = xx; a
      second 6Cxx is returned as is, so a card that keeps changing its mind is visible.

    If a GET RESPONSE ends in something other than 61xx or 9000, the caller gets the data
    collected so far followed by that last response, which is exactly what the card said.
    :meth:`raw` sends without any handling, for cases that must see 61xx or 6Cxx themselves.

    Given a ``wires`` list, both append every physical exchange to it as (command, response,
    end time on ``clock``): that is how a TraceLayer above records what crossed the wire,
    with no call back per exchange (it sets ``clock`` to its own). An exchange made without
    one goes to ``on_stray`` when set: a TraceLayer above sets it, so that nothing sent past
    it goes unrecorded.
    """

    def __init__(
        self,
        inner: Transport,
        *,
        rules: T0Rules,
        auto_6c: bool = True,
        max_rounds: int = 32,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        self.inner = inner
        self.rules = rules
        self.auto_6c = auto_6c
        self.max_rounds = max_rounds
        self.clock = clock
        self.on_stray: Callable[[list[Wire]], None] | None = None
        self._get_responses: dict[int, bytes] = {}  # GET RESPONSE by SW2, built once each

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    @property
    def name(self) -> str:
        return self.inner.name

    def reset(self) -> bytes:
        return self.inner.reset()

    def cold_reset(self) -> bytes:
        """A cold reset where the transport below has one, else its reset()."""
        cold = getattr(self.inner, "cold_reset", None)
        return bytes(cold() if cold is not None else self.inner.reset())

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> T0Layer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"T0Layer({self.inner!r}, auto_6c={self.auto_6c})"

    def raw(self, apdu: bytes, wires: list[Wire] | None = None) -> bytes:
        """Send one APDU with no T=0 handling (still appended to ``wires``)."""
        if wires is None and self.on_stray is not None:
            return self._stray(self.raw, apdu)
        command = bytes(apdu)
        response = bytes(self.inner.transmit(command))
        if wires is not None:
            wires.append((command, response, self.clock()))
        return response

    def transmit(self, apdu: bytes, wires: list[Wire] | None = None) -> bytes:
        """Send one logical command; returns the complete response after T=0 handling.

        The hot path of every exchange a case makes: one frame, sending directly."""
        if wires is None and self.on_stray is not None:
            return self._stray(self.transmit, apdu)
        command = bytes(apdu)
        send = self.inner.transmit
        clock = self.clock
        response = bytes(send(command))
        if wires is not None:
            wires.append((command, response, clock()))
        rules = self.rules
        if (
            len(response) == 2
            and response[0] == rules.wrong_le
            and self.auto_6c
            and _is_short_case2(command)
        ):
            resend = CommandAPDU.parse(command).with_le(response[1] or LE_WHOLE)
            response = self.raw(resend.to_bytes(), wires)
        more = rules.bytes_available
        data = b""
        rounds = 0
        while len(response) >= 2 and response[-2] == more:
            if rounds == self.max_rounds:
                raise BenchError(
                    f"card still answers {response[-2:].hex().upper()} after {rounds} GET "
                    f"RESPONSE rounds (command header {command[:4].hex().upper()})"
                )
            data += response[:-2]
            get_response = self._get_responses.get(response[-1])
            if get_response is None:
                get_response = self._get_responses[response[-1]] = rules.get_response(
                    response[-1])
            response = bytes(send(get_response))
            if wires is not None:
                wires.append((get_response, response, clock()))
            rounds += 1
        return data + response if data else response

    def _stray(self, send: Callable[[bytes, list[Wire]], bytes], apdu: bytes) -> bytes:
        """Send with a list of its own, then hand what crossed the wire to ``on_stray``."""
        wires: list[Wire] = []
        try:
            return send(apdu, wires)
        finally:
            if self.on_stray is not None:
                self.on_stray(wires)


# --------------------------------------------------------------------------- trace


@dataclass(frozen=True)
class TraceEntry:
    """One line of evidence. Field order is the JSONL key order: keep it stable.

    ``command``/``response`` are redacted hex; a reset has command ``"RESET"`` and the ATR as
    response; a note has command ``""``. ``response``/``sw`` are None when there is none
    (a failed exchange, a note). ``wire`` entries are physical exchanges reported by a
    T0Layer; ``parent`` is then the ``seq`` of the logical exchange they carried. Times are
    seconds of the layer's monotonic clock; only differences between them mean anything.
    """

    seq: int
    t_start: float
    t_end: float
    command: str
    response: str | None
    sw: str | None
    duration_ms: float
    wire: bool = False
    parent: int | None = None
    note: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # a flat record: no deep copy needed (dataclasses.asdict dominated a whole run)
        return {name: getattr(self, name) for name in _ENTRY_FIELDS}


_ENTRY_FIELDS = tuple(f.name for f in dataclasses.fields(TraceEntry))


_json_text = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses


def jsonl_line(
    seq: int,
    t_start: float,
    t_end: float,
    command: str,
    response: str | None,
    sw: str | None,
    duration_ms: float,
    wire: bool = False,
    parent: int | None = None,
    note: str | None = None,
    error: str | None = None,
    *,
    wall: Callable[[float], str] | None = None,
) -> str:
    """One entry as a JSON line, fields in TraceEntry order: the same text as ``json.dumps``
    of :meth:`TraceEntry.to_dict` (compact, UTF-8 kept), written out directly because a run
    writes one per exchange. ``wall`` turns a monotonic time into the wall-clock time it
    stands for (conformance.clock): then ``wall_start``/``wall_end`` follow ``t_end``."""
    walls = (f'"wall_start":{_json_text(wall(t_start))},"wall_end":{_json_text(wall(t_end))},'
             if wall is not None else "")
    return (
        f'{{"seq":{seq},"t_start":{t_start!r},"t_end":{t_end!r},{walls}'
        f'"command":{_json_text(command)},'
        f'"response":{"null" if response is None else _json_text(response)},'
        f'"sw":{"null" if sw is None else _json_text(sw)},'
        f'"duration_ms":{duration_ms!r},"wire":{"true" if wire else "false"},'
        f'"parent":{"null" if parent is None else parent},'
        f'"note":{"null" if note is None else _json_text(note)},'
        f'"error":{"null" if error is None else _json_text(error)}}}\n'
    )


def to_jsonl(entries: Iterable[TraceEntry]) -> str:
    """One JSON object per line (keys in field order, UTF-8 text kept as is), newline-ended."""
    return "".join(
        jsonl_line(e.seq, e.t_start, e.t_end, e.command, e.response, e.sw, e.duration_ms,
                   e.wire, e.parent, e.note, e.error)
        for e in entries
    )


def from_jsonl(text: str) -> list[TraceEntry]:
    """Read back what :func:`to_jsonl` wrote (e.g. a recorded trace in fixtures/)."""
    return [TraceEntry(**json.loads(line)) for line in text.splitlines() if line.strip()]


_Raw = tuple[Any, ...]
"""One exchange as recorded: (seq, t_start, t_end, command, response, origin, wire, parent,
note, error); command and response are raw bytes (a str is already public text)."""

_Sent = tuple[float, float, bytes, bytes, "str | None", list[Wire]]
"""One logical exchange as the hot path keeps it: (t_start, t_end, command, response, note,
its wire exchanges); numbered and made records by :meth:`TraceLayer._settle`."""


class TraceLayer:
    """Records every exchange; secrets are masked when the record is read, never stored in
    any output unmasked.

    The hot path keeps each exchange as it happened (raw bytes, monotonic timestamps, the
    wire exchanges a T0Layer below noted): the numbering, the records, the redaction into a
    :class:`TraceEntry`, the scrubbing secrets and the JSON happen once per case, whenever
    the record is read (:meth:`mark`, :meth:`since`, :meth:`evidence`, :meth:`scrub`), not
    per exchange. :meth:`release` drops what was recorded so far, so that a long run keeps
    one case's slice in memory at a time.

    Over a T0Layer (:func:`build_stack`) the wire exchanges are recorded too, beneath the
    logical exchange that caused them, on this layer's clock. Bench errors are recorded with
    the exchange that failed and re-raised: the trace must show where a run broke, and the
    caller decides the verdict.
    """

    def __init__(
        self,
        inner: Transport,
        *,
        redactor: Redactor,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.redactor = redactor
        self._clock = clock
        if isinstance(inner, T0Layer):
            inner.clock = clock  # its wire times sit between this layer's
            inner.on_stray = self._record_stray
            self._send: Callable[[bytes, list[Wire]], bytes] = inner.transmit
            self._send_raw: Callable[[bytes, list[Wire]], bytes] = inner.raw
        else:  # no wire below to note: the exchange is the wire exchange
            self._send = self._send_raw = lambda apdu, _wires: bytes(inner.transmit(apdu))
        self._sent: list[_Sent] = []  # exchanges not yet made records
        self._raw: list[_Raw] = []
        self._shown: list[TraceEntry] = []  # the redacted entries of _raw[:len(_shown)]
        self._seq = 0
        # What a GET RESPONSE collects for, tracked separately for what the cases sent and
        # what crossed the wire (they see different GET RESPONSEs).
        self._origin_logical: bytes | None = None
        self._origin_wire: bytes | None = None
        # Raw secret fields of the exchanges since the last mark(), kept in memory only (and
        # gathered when asked), so that text written about this stretch (a failure reason, a
        # note) can be scrubbed of them.
        self._secrets: list[bytes] = []
        self._secrets_from = 0  # _raw index up to which _secrets is complete
        self.deadline: tuple[float, float] | None = None
        """(clock time, seconds allowed): past it, the next exchange raises CaseTimeout."""
        rules = redactor.rules
        self._gr_ins_byte = bytes([rules.get_response_ins])
        self._more_sw1 = rules.bytes_available_sw1

    # -- Transport ----------------------------------------------------------------------

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    @property
    def name(self) -> str:
        return self.inner.name

    def transmit(self, apdu: bytes, *, note: str | None = None) -> bytes:
        """Send one command through the inner layers and record it (and its wire exchanges)."""
        return self._exchange(self._send, apdu, note)

    def raw(self, apdu: bytes, *, note: str | None = None) -> bytes:
        """Send one command bypassing T=0 handling below, and record it.

        Without a T0Layer below there is no T=0 handling to bypass: it is :meth:`transmit`.
        """
        return self._exchange(self._send_raw, apdu, note)

    def reset(self, *, cold: bool = False) -> bytes:
        """Reset the card; recorded as command ``RESET`` with the new ATR as response.

        ``cold`` powers it off and on where the layers below can (``cold_reset``), else it
        is the transport's usual reset; the note says which was asked for."""
        self._check_deadline()
        self._settle()
        seq, t_start = self._take_seq(), self._clock()
        self._origin_logical = self._origin_wire = None
        send = self.inner.reset
        note = None
        if cold:
            send = getattr(self.inner, "cold_reset", None) or send
            note = "cold reset"
        try:
            atr = bytes(send())
        except Exception as exc:
            error = _error_text(exc)
            self._raw.append((seq, t_start, self._clock(), "RESET", None, None, False, None,
                              note, error))
            raise
        self._raw.append((seq, t_start, self._clock(), "RESET", atr.hex().upper(), None,
                          False, None, note, None))
        return atr

    def _timed(self) -> Any:
        """The transport at the bottom that times its own card calls (``wire_s``), or None."""
        layer: Any = self.inner
        while layer is not None and getattr(layer, "wire_s", None) is None:
            layer = getattr(layer, "inner", None)
        return layer

    def wire_seconds(self) -> float | None:
        """Seconds the transport at the bottom spent inside its card calls so far (its own
        timestamps around SCardTransmit / the responder), or None if it keeps none."""
        timed = self._timed()
        return None if timed is None else float(timed.wire_s)

    def last_wire_seconds(self) -> float | None:
        """How long the latest card call of the transport at the bottom took, or None."""
        timed = self._timed()
        return None if timed is None else timed.last_wire[1] - timed.last_wire[0]

    @property
    def position(self) -> int:
        """How many entries are recorded (since the last release), for :meth:`wire_log`."""
        return len(self._settle())

    def wire_log(self, position: int) -> list[bytes | str]:
        """The commands that crossed the wire after ``position`` (raw bytes; ``"RESET"`` for
        a reset), to replay them elsewhere (a measurement's floor)."""
        return [rec[3] for rec in self._settle()[position:] if rec[6] or rec[3] == "RESET"]

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> TraceLayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TraceLayer({self.inner!r}, {len(self._settle())} entries)"

    # -- the record ---------------------------------------------------------------------

    @property
    def entries(self) -> list[TraceEntry]:
        """All entries so far (since the last :meth:`release`), in ``seq`` order, redacted."""
        return list(self._materialize())

    def mark(self) -> int:
        """The current position; :meth:`since` with it gives what was recorded after.

        It also starts a new stretch for :meth:`scrub` (the secrets of one case)."""
        self._secrets = []
        self._secrets_from = len(self._settle())
        return self._secrets_from

    def release(self) -> None:
        """Forget every entry recorded so far (written out already): memory stays bounded by
        one case's slice however long the run. Positions from earlier marks lose meaning."""
        self._settle().clear()
        self._shown.clear()
        self._secrets = []
        self._secrets_from = 0

    def scrub(self, text: str) -> str:
        """`text` with every secret field seen since the last mark() masked."""
        return self.redactor.scrub(text, self._gather_secrets())

    def since(self, mark: int) -> list[TraceEntry]:
        """The entries recorded after ``mark``: one case's slice of the trace."""
        return self._materialize()[mark:]

    def annotate(self, text: str) -> TraceEntry:
        """Add a note entry, e.g. ``"case SEC-RD-DF01-003 begins"``."""
        text = self.scrub(text)
        now = self._clock()
        record = (self._take_seq(), now, now, "", None, None, False, None, text, None)
        self._raw.append(record)
        return TraceEntry(*self._render(record))

    def to_jsonl(self, entries: Iterable[TraceEntry] | None = None) -> str:
        """JSONL of the given entries (default: all of them)."""
        return to_jsonl(self._materialize() if entries is None else entries)

    def evidence(self, mark: int, wall: Callable[[float], str] | None = None) -> str:
        """The JSONL of the entries after ``mark`` (what ``to_jsonl(since(mark))`` gives),
        redacted and written straight from the record: one case's evidence, with wall-clock
        times where ``wall`` is given (see :func:`jsonl_line`)."""
        render = self._render
        return "".join(jsonl_line(*render(rec), wall=wall) for rec in self._settle()[mark:])

    # -- internals ----------------------------------------------------------------------

    def _check_deadline(self) -> None:
        if self.deadline is not None and self._clock() > self.deadline[0]:
            raise CaseTimeout(self.deadline[1])

    def _exchange(self, send: Callable[[bytes, list[Wire]], bytes], apdu: bytes,
                  note: str | None) -> bytes:
        """The hot path: send, and keep what happened as it is (see :meth:`_settle`)."""
        t_start = self._clock()
        deadline = self.deadline
        if deadline is not None and t_start > deadline[0]:
            raise CaseTimeout(deadline[1])
        command = bytes(apdu)
        wires: list[Wire] = []
        try:
            response = send(command, wires)
        except Exception as exc:
            self._record_failure(t_start, command, note, wires, exc)
            raise
        self._sent.append((t_start, self._clock(), command, response, note, wires))
        return response

    def _settle(self) -> list[_Raw]:
        """The records, once the exchanges kept by the hot path are numbered and made
        records (the logical exchange, then its wire exchanges, with their origins)."""
        sent = self._sent
        if sent:
            for t_start, t_end, command, response, note, wires in sent:
                self._add(t_start, t_end, command, response, note, None, wires)
            sent.clear()
        return self._raw

    def _add(self, t_start: float, t_end: float, command: bytes, response: bytes | None,
             note: str | None, error: str | None, wires: list[Wire]) -> None:
        """Record one logical exchange and its wire exchanges: a wire exchange is taken to
        start when the previous one of the same logical exchange ended (or when the logical
        one began): the T=0 layer does nothing measurable in between."""
        raw = self._raw
        parent = self._take_seq()
        origin = self._origin_logical
        raw.append((parent, t_start, t_end, command, response, origin, False, None, note,
                    error))
        self._origin_logical = None if response is None else self._follow(origin, command,
                                                                           response)
        origin = self._origin_wire
        t_prev = t_start
        for wire_command, wire_response, t_wire in wires:
            raw.append((self._take_seq(), t_prev, t_wire, wire_command, wire_response, origin,
                        True, parent, None, None))
            origin = self._follow(origin, wire_command, wire_response)
            t_prev = t_wire
        self._origin_wire = origin

    def _record_failure(self, t_start: float, command: bytes, note: str | None,
                        wires: list[Wire], exc: Exception) -> None:
        """Record an exchange the bench could not complete, its error scrubbed of the
        secrets of what it sent and what crossed the wire before it broke."""
        self._settle()
        fields = self.redactor.secret_fields
        secrets = fields(command)
        origin = self._origin_wire
        for wire_command, wire_response, _ in wires:
            secrets += fields(wire_command, wire_response, origin=origin)
            origin = self._follow(origin, wire_command, wire_response)
        error = self.redactor.scrub(_error_text(exc), secrets)
        self._add(t_start, self._clock(), command, None, note, error, wires)

    def _record_stray(self, wires: list[Wire]) -> None:
        """Record wire exchanges someone made on the T0Layer below, bypassing this layer."""
        raw = self._settle()
        origin = self._origin_wire
        for command, response, t_end in wires:
            raw.append((self._take_seq(), t_end, t_end, command, response, origin, True, None,
                        "wire exchange outside a traced exchange; start time unknown", None))
            origin = self._follow(origin, command, response)
        self._origin_wire = origin

    def _follow(self, origin: bytes | None, command: bytes, response: bytes) -> bytes | None:
        """The command a following GET RESPONSE collects for (it decides what is secret):
        this one after a 61xx, unless it is itself a GET RESPONSE; None after anything else.
        """
        if len(response) >= 2 and response[-2] == self._more_sw1:
            return origin if command[1:2] == self._gr_ins_byte else command
        return None

    def _gather_secrets(self) -> list[bytes]:
        """The secret fields of every exchange since the last mark() (computed once each)."""
        fields = self.redactor.secret_fields
        raw = self._settle()
        for rec in raw[self._secrets_from:]:
            command = rec[3]
            if isinstance(command, bytes):
                self._secrets += fields(command, rec[4], origin=rec[5])
        self._secrets_from = len(raw)
        return self._secrets

    def _materialize(self) -> list[TraceEntry]:
        """The redacted entries of everything recorded (each record redacted once)."""
        shown = self._shown
        render = self._render
        shown.extend(TraceEntry(*render(rec)) for rec in self._settle()[len(shown):])
        return shown

    def _render(self, rec: _Raw) -> tuple[Any, ...]:
        """The TraceEntry field values of a record, bytes redacted (a str is public)."""
        seq, t_start, t_end, command, response, origin, wire, parent, note, error = rec
        sw = None
        if isinstance(command, bytes):
            command, response, sw = self.redactor.render_exchange(command, response, origin)
        return (seq, t_start, t_end, command, response, sw, (t_end - t_start) * 1000.0, wire,
                parent, note, error)

    def _take_seq(self) -> int:
        self._seq += 1
        return self._seq


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def build_stack(
    inner: Transport,
    *,
    profile: CardProfile,
    redactor: Redactor | None = None,
    clock: Callable[[], float] = time.monotonic,
    auto_6c: bool = True,
) -> TraceLayer:
    """``TraceLayer(T0Layer(inner))``: the trace records the wire exchanges too.

    T=0 handling and (unless ``redactor`` is given) masking follow the profile. The T0Layer
    is the returned layer's ``inner`` (for its ``auto_6c`` switch).
    """
    if redactor is None:
        redactor = Redactor.from_profile(profile)
    t0 = T0Layer(inner, rules=T0Rules.from_profile(profile), auto_6c=auto_6c)
    return TraceLayer(t0, redactor=redactor, clock=clock)
