"""End to end through pcscd + vpcd: the reference terminal and the independent plain terminal
as programs, on the virtual card served in Virtual PCD 00 00, exactly as the terminal suite
starts them (TERMINAL.md "One transaction": RHC_READER, RHC_KEYS, JSON on stdin/stdout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, VPCD_READER

from conformance.model import (
    DEFAULT_PERSONALIZATION,
    DEFAULT_TEST_KEYS,
    load_key_set,
    load_personalization,
    load_profile,
)

pytestmark = pytest.mark.e2e

REFERENCE = [sys.executable, "-m", "conformance.cli", "terminal", "reference"]
PLAIN = [sys.executable, str(ROOT / "tests" / "terminals" / "plain_terminal.py")]


class Recorder:
    """The served card, recording what the terminal sent; ``stall_at``: the n-th command is
    answered only after ``stall_s``."""

    def __init__(self, inner: Any, stall_at: int = 0, stall_s: float = 0.0) -> None:
        self.inner = inner
        self.stall_at, self.stall_s = stall_at, stall_s
        self.commands: list[bytes] = []
        self.responses: list[bytes] = []

    def reset(self) -> bytes:
        return self.inner.reset()

    def process(self, apdu: bytes) -> bytes:
        response = self.inner.process(apdu)
        self.commands.append(bytes(apdu))
        if len(self.commands) == self.stall_at:
            time.sleep(self.stall_s)
        self.responses.append(response)
        return response


def transaction(command: list[str], *argv: str, items: dict[str, str] | None = None
                ) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RHC_READER": VPCD_READER,
           "RHC_KEYS": str(DEFAULT_TEST_KEYS)}
    stdin = json.dumps({"items": items}, ensure_ascii=False) if items is not None else ""
    done = subprocess.run([*command, *argv], input=stdin, capture_output=True, text=True,
                          env=env, timeout=60, check=False, cwd=ROOT)
    return done.returncode, json.loads(done.stdout)


@pytest.fixture
def served(vpcd_card: Callable[..., object]) -> Callable[..., Recorder]:
    from conformance.card import VirtualCard

    profile = load_profile()

    def serve(features: frozenset[str] = frozenset(), **stall: float) -> Recorder:
        card = VirtualCard.personalize(profile, load_personalization(DEFAULT_PERSONALIZATION,
                                                                     profile),
                                       load_key_set(DEFAULT_TEST_KEYS, profile),
                                       features=features)
        recorder = Recorder(card, **stall)  # type: ignore[arg-type]
        vpcd_card(recorder)
        return recorder

    return serve


@pytest.mark.parametrize("command", [REFERENCE, PLAIN], ids=["reference", "plain"])
@pytest.mark.parametrize("features", [frozenset(), frozenset({"t0_get_response"})],
                         ids=["T=1", "T=0"])
def test_a_terminal_program_through_pcsc(served: Callable[..., Recorder], command: list[str],
                                         features: frozenset[str]) -> None:
    card = served(features)
    assert transaction(command, "get", "11", "16") == (
        0, {"items": {"11": "王测试", "16": "13800000000"}})
    assert transaction(command, "put", items={"16": "13912345678"}) == (0, {"status": "ok"})
    assert transaction(command, "get", "16") == (0, {"items": {"16": "13912345678"}})
    assert transaction(command, "append-allergy", items={"58": "青霉素"}) == (0, {"status": "ok"})
    assert transaction(command, "read-allergies") == (0, {"records": [{"58": "青霉素", "59": ""}]})
    assert transaction(command, "write-outpatient", items={"213": "医院"}) == (
        0, {"status": "ok", "slot": 1})
    status, doc = transaction(command, "read-outpatient", "1")
    assert status == 0 and doc["items"]["213"] == "医院"
    if features:
        for i, response in enumerate(card.responses[:-1]):
            if response[-2] == 0x61:
                assert card.commands[i + 1][:2] == b"\x00\xc0"


def test_a_faulty_reference_terminal_through_pcsc(served: Callable[..., Recorder]) -> None:
    card = served(frozenset({"t0_get_response"}))
    status, doc = transaction([*REFERENCE, "--fault", "skip_get_response"],
                              "get", "11")
    assert status == 1 and doc["sw"].startswith("61")
    assert not any(c[:2] == b"\x00\xc0" for c in card.commands)


def test_the_reference_profile_command_runs(served: Callable[..., Recorder],
                                            tmp_path: Path) -> None:
    """The profile's command (`rhc terminal reference`) with the venv's rhc on PATH."""
    served()
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(ROOT), "RHC_READER": VPCD_READER,
           "RHC_KEYS": str(DEFAULT_TEST_KEYS)}
    done = subprocess.run(["rhc", "terminal", "reference", "get", "11"], capture_output=True,
                          text=True, env=env, timeout=60, check=False, cwd=tmp_path)
    assert done.returncode == 0 and json.loads(done.stdout) == {"items": {"11": "王测试"}}


@pytest.mark.parametrize("command", [REFERENCE, PLAIN], ids=["reference", "plain"])
def test_a_card_that_stops_answering_is_given_up_inside_timeout_s(
    served: Callable[..., Recorder], command: list[str]
) -> None:
    """A program that outlives the profile's timeout_s (30 s) is killed: the terminals give up
    on one unanswered command after 10 s and report it."""
    served(stall_at=3, stall_s=14.0)
    start = time.monotonic()
    status, doc = transaction(command, "get", "11")
    assert status == 1 and doc["status"] == "error"
    assert time.monotonic() - start < 13.5
