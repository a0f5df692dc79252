"""Composable transport layers: T=0 response handling, and the APDU trace every verdict cites.

Each layer is itself a Transport wrapping an inner one, so a bench is assembled as
``TraceLayer(T0Layer(pcsc_or_inprocess))`` (see :func:`build_stack`). The layers work on raw
bytes: they must carry malformed APDUs that a case sends on purpose, unchanged (the APDUs
they build themselves, GET RESPONSE and a resend with the right Le, come from
:class:`~conformance.apdu.CommandAPDU`).

- :class:`T0Layer` is the one audited place for T=0 (``61xx`` → GET RESPONSE, ``6Cxx`` → resend
  with Le), and reports every physical exchange through ``on_wire``. GET RESPONSE's CLA/INS
  and the two SW1 values come from the profile (:meth:`T0Rules.from_profile`).
- :class:`TraceLayer` records every exchange with monotonic timestamps, the logical exchange
  (what the case sent) with the wire exchanges beneath it, secrets masked by a
  :class:`~conformance.transport.redact.Redactor` whenever entries are read out (once per
  case, when its evidence is written: the hot path only keeps bytes and timestamps).
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
    "OnWire",
    "T0Layer",
    "T0Rules",
    "TraceEntry",
    "TraceLayer",
    "build_stack",
    "from_jsonl",
    "to_jsonl",
]

OnWire = Callable[[bytes, bytes], None]
"""Called as ``on_wire(command, response)`` once per physical exchange."""



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
    """

    def __init__(
        self,
        inner: Transport,
        *,
        rules: T0Rules,
        on_wire: OnWire | None = None,
        auto_6c: bool = True,
        max_rounds: int = 32,
    ) -> None:
        if max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        self.inner = inner
        self.rules = rules
        self.on_wire = on_wire  # settable later: TraceLayer.on_wire is created after this layer
        self.auto_6c = auto_6c
        self.max_rounds = max_rounds
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

    def raw(self, apdu: bytes) -> bytes:
        """Send one APDU with no T=0 handling (still reported to ``on_wire``)."""
        return self._wire(bytes(apdu))

    def transmit(self, apdu: bytes) -> bytes:
        """Send one logical command; returns the complete response after T=0 handling."""
        command = bytes(apdu)
        response = bytes(self.inner.transmit(command))
        on_wire = self.on_wire
        if on_wire is not None:
            on_wire(command, response)
        if len(response) < 2:
            return response
        sw1 = response[-2]
        if sw1 == self.rules.bytes_available:
            return self._collect(command, response)
        if (
            sw1 == self.rules.wrong_le
            and self.auto_6c
            and len(response) == 2
            and _is_short_case2(command)
        ):
            resend = CommandAPDU.parse(command).with_le(response[-1] or LE_WHOLE)
            return self._collect(command, self._wire(resend.to_bytes()))
        return response

    def _collect(self, command: bytes, response: bytes) -> bytes:
        # the loop between a 61xx and its GET RESPONSE is the hot path of every T=0 read:
        # it sends and reports directly (what _wire does), with the GET RESPONSEs cached
        data = b""
        rounds = 0
        more = self.rules.bytes_available
        send = self.inner.transmit
        on_wire = self.on_wire
        while len(response) >= 2 and response[-2] == more:
            if rounds == self.max_rounds:
                raise BenchError(
                    f"card still answers {response[-2:].hex().upper()} after {rounds} GET "
                    f"RESPONSE rounds (command header {command[:4].hex().upper()})"
                )
            data += response[:-2]
            get_response = self._get_responses.get(response[-1])
            if get_response is None:
                get_response = self._get_responses[response[-1]] = self.rules.get_response(
                    response[-1])
            response = bytes(send(get_response))
            if on_wire is not None:
                on_wire(get_response, response)
            rounds += 1
        return data + response if data else response

    def _wire(self, command: bytes) -> bytes:
        response = bytes(self.inner.transmit(command))
        on_wire = self.on_wire
        if on_wire is not None:
            on_wire(command, response)
        return response


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
"""One exchange as it happened: (seq, t_start, t_end, command, response, origin, wire,
parent, note, error); command and response are raw bytes (a str is already public text)."""


class TraceLayer:
    """Records every exchange; secrets are masked when the record is read, never stored in
    any output unmasked.

    The hot path keeps each exchange as raw bytes and monotonic timestamps (a tuple): the
    redaction into a :class:`TraceEntry`, the scrubbing secrets and the JSON happen once per
    case, when its evidence is written (:meth:`since`, :meth:`scrub`), not per exchange.
    :meth:`release` drops what was recorded so far, so that a long run keeps one case's slice
    in memory at a time.

    Pass :meth:`on_wire` to a T0Layer below (or use :func:`build_stack`) to get the wire
    exchanges too. Bench errors are recorded with the exchange that failed and re-raised: the
    trace must show where a run broke, and the caller decides the verdict.
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
        self._raw: list[_Raw] = []
        self._shown: list[TraceEntry] = []  # the redacted entries of _raw[:len(_shown)]
        self._seq = 0
        self._wires: list[tuple[bytes, bytes, float]] | None = None
        """The wire exchanges of the logical exchange under way: (command, response, end)."""
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
        return self._exchange(self.inner.transmit, bytes(apdu), note)

    def raw(self, apdu: bytes, *, note: str | None = None) -> bytes:
        """Send one command bypassing T=0 handling below (``inner.raw``), and record it.

        An inner layer without ``raw`` has no T=0 handling to bypass, so its ``transmit`` is
        used.
        """
        send = getattr(self.inner, "raw", None) or self.inner.transmit
        return self._exchange(send, bytes(apdu), note)

    def reset(self, *, cold: bool = False) -> bytes:
        """Reset the card; recorded as command ``RESET`` with the new ATR as response.

        ``cold`` powers it off and on where the layers below can (``cold_reset``), else it
        is the transport's usual reset; the note says which was asked for."""
        self._check_deadline()
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
        return len(self._raw)

    def wire_log(self, position: int) -> list[bytes | str]:
        """The commands that crossed the wire after ``position`` (raw bytes; ``"RESET"`` for
        a reset), to replay them elsewhere (a measurement's floor)."""
        return [rec[3] for rec in self._raw[position:] if rec[6] or rec[3] == "RESET"]

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> TraceLayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TraceLayer({self.inner!r}, {len(self._raw)} entries)"

    # -- the record ---------------------------------------------------------------------

    @property
    def entries(self) -> list[TraceEntry]:
        """All entries so far (since the last :meth:`release`), in ``seq`` order, redacted."""
        return list(self._materialize())

    def mark(self) -> int:
        """The current position; :meth:`since` with it gives what was recorded after.

        It also starts a new stretch for :meth:`scrub` (the secrets of one case)."""
        self._secrets = []
        self._secrets_from = len(self._raw)
        return len(self._raw)

    def release(self) -> None:
        """Forget every entry recorded so far (written out already): memory stays bounded by
        one case's slice however long the run. Positions from earlier marks lose meaning."""
        self._raw.clear()
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
        now = self._clock()
        record = (self._take_seq(), now, now, "", None, None, False, None, self.scrub(text), None)
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
        return "".join(jsonl_line(*render(rec), wall=wall) for rec in self._raw[mark:])

    def on_wire(self, command: bytes, response: bytes) -> None:
        """Record one physical exchange; give this to a T0Layer below as its ``on_wire``.

        The callback comes after the exchange, so a wire exchange is taken to start when the
        previous one of the same logical exchange ended (or when the logical one began): the
        T=0 layer does nothing measurable in between. It runs between two exchanges of one
        command, so it only notes the bytes and the time; the record is made when the
        logical exchange is over (:meth:`_settle`).
        """
        wires = self._wires
        if wires is not None:
            wires.append((command, response, self._clock()))
            return
        # someone used the T0Layer directly, bypassing this layer
        t_end = self._clock()
        self._raw.append((self._take_seq(), t_end, t_end, bytes(command), bytes(response),
                          self._origin_wire, True, None,
                          "wire exchange outside a traced exchange; start time unknown", None))
        self._origin_wire = self._follow(self._origin_wire, command, response)

    # -- internals ----------------------------------------------------------------------

    def _check_deadline(self) -> None:
        if self.deadline is not None and self._clock() > self.deadline[0]:
            raise CaseTimeout(self.deadline[1])

    def _exchange(self, send: Callable[[bytes], bytes], apdu: bytes, note: str | None) -> bytes:
        if self._wires is not None:
            raise RuntimeError("TraceLayer: exchanges cannot nest")
        t_start = self._clock()
        deadline = self.deadline
        if deadline is not None and t_start > deadline[0]:
            raise CaseTimeout(deadline[1])
        self._seq = seq = self._seq + 1
        self._wires = noted = []
        origin = self._origin_logical
        try:
            response = bytes(send(apdu))
        except Exception as exc:
            self._origin_logical = None
            wires = self._settle(seq, t_start, noted)
            secrets = self.redactor.secret_fields(apdu)
            for wire in wires:
                secrets += self.redactor.secret_fields(wire[3], wire[4], origin=wire[5])
            error = self.redactor.scrub(_error_text(exc), secrets)
            self._raw.append((seq, t_start, self._clock(), apdu, None, origin, False, None,
                              note, error))
            self._raw += wires
            raise
        finally:
            self._wires = None
        raw = self._raw
        raw.append((seq, t_start, self._clock(), apdu, response, origin, False, None,
                    note, None))
        raw += self._settle(seq, t_start, noted)
        self._origin_logical = self._follow(origin, apdu, response)
        return response

    def _settle(self, parent: int, t_start: float,
                noted: list[tuple[bytes, bytes, float]]) -> list[_Raw]:
        """The records of the wire exchanges noted during logical exchange ``parent``."""
        records: list[_Raw] = []
        origin = self._origin_wire
        t_prev = t_start
        for command, response, t_end in noted:
            records.append((self._take_seq(), t_prev, t_end, command, response, origin, True,
                            parent, None, None))
            origin = self._follow(origin, command, response)
            t_prev = t_end
        self._origin_wire = origin
        return records

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
        for rec in self._raw[self._secrets_from:]:
            command = rec[3]
            if isinstance(command, bytes):
                self._secrets += fields(command, rec[4], origin=rec[5])
        self._secrets_from = len(self._raw)
        return self._secrets

    def _materialize(self) -> list[TraceEntry]:
        """The redacted entries of everything recorded (each record redacted once)."""
        shown = self._shown
        render = self._render
        shown.extend(TraceEntry(*render(rec)) for rec in self._raw[len(shown):])
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
    """``TraceLayer(T0Layer(inner))`` wired so the trace also records the wire exchanges.

    T=0 handling and (unless ``redactor`` is given) masking follow the profile. The T0Layer
    is the returned layer's ``inner`` (for its ``auto_6c`` switch).
    """
    if redactor is None:
        redactor = Redactor.from_profile(profile)
    t0 = T0Layer(inner, rules=T0Rules.from_profile(profile), auto_6c=auto_6c)
    trace = TraceLayer(t0, redactor=redactor, clock=clock)
    t0.on_wire = trace.on_wire
    return trace
