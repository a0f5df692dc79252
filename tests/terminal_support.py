"""Helpers of the terminal tests: a socket reader in place of PC/SC, and the tiny terminal.

SocketBench serves each test card on a local TCP port; ``RHC_READER`` is ``tcp:HOST:PORT``.
A connection is a power-up (the responder is reset, its ATR is the first answer); then each
2-byte length ‖ APDU is answered the same way. pull() closes the port mid-transaction.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TINY = [sys.executable, str(ROOT / "tests" / "tiny_terminal.py")]


class _Reader:
    def __init__(self, responder: Any) -> None:
        self.responder = responder
        self.server = socket.create_server(("127.0.0.1", 0))
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def name(self) -> str:
        return f"tcp:127.0.0.1:{self.server.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                head = conn.recv(2, socket.MSG_WAITALL)
                if len(head) < 2:
                    return
                n = int.from_bytes(head, "big")
                apdu = conn.recv(n, socket.MSG_WAITALL) if n else b""
                answer = self.responder.reset() if not apdu else self.responder.process(apdu)
                conn.sendall(len(answer).to_bytes(2, "big") + answer)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.server.close()
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()


class SocketBench:
    """The Bench protocol of conformance.terminal.bench over local sockets."""

    def __init__(self) -> None:
        self.readers: dict[int, _Reader] = {}

    def insert(self, responder: Any, slot: int) -> str:
        reader = _Reader(responder)
        self.readers[slot] = reader
        return reader.name

    def pull(self, slot: int) -> None:
        reader = self.readers.get(slot)
        if reader is not None:
            reader.close()

    def remove(self, slot: int) -> None:
        reader = self.readers.pop(slot, None)
        if reader is not None:
            reader.close()


def tiny_profile(tmp: Path, fault: str = "", **extra: Any) -> Path:
    """A terminal profile for the tiny terminal (with ``--fault``), written to ``tmp``."""
    import yaml

    command = [*TINY, *(["--fault", fault] if fault else [])]
    data = {"name": f"tiny terminal {fault or 'ok'}", "vendor": "rhc tests", "model": "tiny",
            "version": "1", "kind": "terminal", "mode": "command", "command": command,
            "operations": ["get", "put", "append-allergy", "read-allergies",
                           "append-immunization", "read-immunizations", "write-inpatient",
                           "read-inpatient", "write-outpatient", "read-outpatient"],
            "uses_sam": False, "timeout_s": 8, **extra}
    path = tmp / f"tiny-{fault or 'ok'}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path
