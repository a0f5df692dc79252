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
  :class:`~conformance.transport.redact.Redactor` before anything is stored.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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
        le = sw2 or LE_WHOLE
        return CommandAPDU(self.get_response_cla, self.get_response_ins, 0, 0, le=le).to_bytes()


def _sw(response: bytes) -> tuple[int, int] | None:
    return (response[-2], response[-1]) if len(response) >= 2 else None


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

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    @property
    def name(self) -> str:
        return self.inner.name

    def reset(self) -> bytes:
        return self.inner.reset()

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
        response = self._wire(command)
        sw = _sw(response)
        if (
            self.auto_6c
            and sw is not None
            and sw[0] == self.rules.wrong_le
            and len(response) == 2
            and _is_short_case2(command)
        ):
            resend = CommandAPDU.parse(command).with_le(sw[1] or LE_WHOLE)
            response = self._wire(resend.to_bytes())
        return self._collect(command, response)

    def _collect(self, command: bytes, response: bytes) -> bytes:
        data = b""
        rounds = 0
        while (sw := _sw(response)) is not None and sw[0] == self.rules.bytes_available:
            if rounds == self.max_rounds:
                raise BenchError(
                    f"card still answers {response[-2:].hex().upper()} after {rounds} GET "
                    f"RESPONSE rounds (command header {command[:4].hex().upper()})"
                )
            data += response[:-2]
            response = self._wire(self.rules.get_response(sw[1]))
            rounds += 1
        return data + response

    def _wire(self, command: bytes) -> bytes:
        response = bytes(self.inner.transmit(command))
        if self.on_wire is not None:
            self.on_wire(command, response)
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


def to_jsonl(entries: Iterable[TraceEntry]) -> str:
    """One JSON object per line (keys in field order, UTF-8 text kept as is), newline-ended."""
    lines = [json.dumps(e.to_dict(), ensure_ascii=False, separators=(",", ":")) for e in entries]
    return "".join(line + "\n" for line in lines)


def from_jsonl(text: str) -> list[TraceEntry]:
    """Read back what :func:`to_jsonl` wrote (e.g. a recorded trace in fixtures/)."""
    return [TraceEntry(**json.loads(line)) for line in text.splitlines() if line.strip()]


@dataclass
class _Open:
    """The logical exchange in progress: wire entries wait here to be stored after it."""

    seq: int
    t_start: float
    last_end: float
    wires: list[TraceEntry] = field(default_factory=list)
    secrets: list[bytes] = field(default_factory=list)


class TraceLayer:
    """Records every exchange as a :class:`TraceEntry`, secrets masked before storage.

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
        self._entries: list[TraceEntry] = []
        self._seq = 0
        self._open: _Open | None = None
        # What a GET RESPONSE collects for, tracked separately for what the cases sent and
        # what crossed the wire (they see different GET RESPONSEs).
        self._origin_logical: bytes | None = None
        self._origin_wire: bytes | None = None
        # Raw secret fields seen since the last mark(), kept in memory only, so that text
        # written about this stretch (a failure reason, a note) can be scrubbed of them.
        self._secrets: list[bytes] = []
        self.deadline: tuple[float, float] | None = None
        """(clock time, seconds allowed): past it, the next exchange raises CaseTimeout."""

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

    def reset(self) -> bytes:
        """Reset the card; recorded as command ``RESET`` with the new ATR as response."""
        self._check_deadline()
        seq, t_start = self._take_seq(), self._clock()
        self._origin_logical = self._origin_wire = None
        try:
            atr = bytes(self.inner.reset())
        except Exception as exc:
            error = _error_text(exc)
            self._store(self._make(seq, t_start, self._clock(), "RESET", None, None, error=error))
            raise
        self._store(self._make(seq, t_start, self._clock(), "RESET", atr.hex().upper(), None))
        return atr

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> TraceLayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TraceLayer({self.inner!r}, {len(self._entries)} entries)"

    def _next_origin(
        self, current: bytes | None, command: bytes, response: bytes | None
    ) -> bytes | None:
        """The command a following GET RESPONSE collects for (it decides what is secret)."""
        rules = self.redactor.rules
        if not rules.announces_more(response):
            return None
        return current if rules.is_get_response(command) else command

    # -- the record ---------------------------------------------------------------------

    @property
    def entries(self) -> list[TraceEntry]:
        """All entries so far, in ``seq`` order (a copy: the record itself is append-only)."""
        return list(self._entries)

    def mark(self) -> int:
        """The current position; :meth:`since` with it gives what was recorded after.

        It also starts a new stretch for :meth:`scrub` (the secrets of one case)."""
        self._secrets = []
        return len(self._entries)

    def scrub(self, text: str) -> str:
        """`text` with every secret field seen since the last mark() masked."""
        return self.redactor.scrub(text, self._secrets)

    def since(self, mark: int) -> list[TraceEntry]:
        """The entries recorded after ``mark``: one case's slice of the trace."""
        return self._entries[mark:]

    def annotate(self, text: str) -> TraceEntry:
        """Add a note entry, e.g. ``"case SEC-RD-DF01-003 begins"``."""
        now = self._clock()
        entry = TraceEntry(self._take_seq(), now, now, "", None, None, 0.0, note=self.scrub(text))
        self._store(entry)
        return entry

    def to_jsonl(self, entries: Iterable[TraceEntry] | None = None) -> str:
        """JSONL of the given entries (default: all of them)."""
        return to_jsonl(self._entries if entries is None else entries)

    def on_wire(self, command: bytes, response: bytes) -> None:
        """Record one physical exchange; give this to a T0Layer below as its ``on_wire``.

        The callback comes after the exchange, so a wire exchange is taken to start when the
        previous one of the same logical exchange ended (or when the logical one began): the
        T=0 layer does nothing measurable in between.
        """
        command, response = bytes(command), bytes(response)
        t_end = self._clock()
        origin = self._origin_wire
        self._origin_wire = self._next_origin(origin, command, response)
        opened = self._open
        if opened is None:  # someone used the T0Layer directly, bypassing this layer
            entry = self._make(
                self._take_seq(),
                t_end,
                t_end,
                command,
                response,
                origin,
                wire=True,
                note="wire exchange outside a traced exchange; start time unknown",
            )
            self._store(entry)
            return
        entry = self._make(
            self._take_seq(),
            opened.last_end,
            t_end,
            command,
            response,
            origin,
            wire=True,
            parent=opened.seq,
        )
        opened.last_end = t_end
        opened.wires.append(entry)
        opened.secrets += self.redactor.secret_fields(command, response, origin=origin)

    # -- internals ----------------------------------------------------------------------

    def _check_deadline(self) -> None:
        if self.deadline is not None and self._clock() > self.deadline[0]:
            raise CaseTimeout(self.deadline[1])

    def _exchange(self, send: Callable[[bytes], bytes], apdu: bytes, note: str | None) -> bytes:
        if self._open is not None:
            raise RuntimeError("TraceLayer: exchanges cannot nest")
        self._check_deadline()
        seq, t_start = self._take_seq(), self._clock()
        opened = _Open(seq, t_start, t_start)
        origin = self._origin_logical
        self._open = opened
        try:
            response = bytes(send(apdu))
        except Exception as exc:
            self._origin_logical = None
            secrets = self.redactor.secret_fields(apdu) + opened.secrets
            self._secrets += secrets
            error = self.redactor.scrub(_error_text(exc), secrets)
            entry = self._make(
                seq, t_start, self._clock(), apdu, None, origin, note=note, error=error
            )
            self._store(entry, *opened.wires)
            raise
        finally:
            self._open = None
        self._origin_logical = self._next_origin(origin, apdu, response)
        self._secrets += self.redactor.secret_fields(apdu, response, origin=origin)
        self._secrets += opened.secrets
        entry = self._make(seq, t_start, self._clock(), apdu, response, origin, note=note)
        self._store(entry, *opened.wires)
        return response

    def _make(
        self,
        seq: int,
        t_start: float,
        t_end: float,
        command: bytes | str,
        response: bytes | str | None,
        origin: bytes | None,
        *,
        wire: bool = False,
        parent: int | None = None,
        note: str | None = None,
        error: str | None = None,
    ) -> TraceEntry:
        """Build an entry, redacting bytes (a str command/response is already public)."""
        sw: str | None = None
        if isinstance(command, bytes):
            shown_cmd = self.redactor.redact_command(command)
            if isinstance(response, bytes):
                sw = response[-2:].hex().upper() if len(response) >= 2 else None
                response = self.redactor.redact_response(command, response, origin=origin)
        else:
            shown_cmd = command
        return TraceEntry(
            seq=seq,
            t_start=t_start,
            t_end=t_end,
            command=shown_cmd,
            response=response,
            sw=sw,
            duration_ms=(t_end - t_start) * 1000.0,
            wire=wire,
            parent=parent,
            note=note,
            error=error,
        )

    def _take_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _store(self, *entries: TraceEntry) -> None:
        self._entries.extend(entries)


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
