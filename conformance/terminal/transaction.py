"""One transaction (TERMINAL.md "One transaction"): start the terminal's program, feed it,
read its answer, kill it at the timeout, and say plainly what came back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Outcome", "run_transaction"]

STDERR_KEEP = 2000


@dataclass
class Outcome:
    """What one run of the terminal's program gave."""

    argv: list[str]
    exit_code: int | None
    """None: killed at the timeout."""
    stdout: str
    stderr: str
    duration_s: float
    document: Any = None
    """The JSON document on standard output, if it parsed."""
    problem: str = ""
    """Why the outcome is no valid answer ('' when it is one)."""
    problem_zh: str = ""
    stdin: dict[str, Any] | None = field(default=None)

    @property
    def ok(self) -> bool:
        """Exit 0 with a JSON object on standard output."""
        return not self.problem and self.exit_code == 0

    def to_json(self) -> dict[str, Any]:
        return {"argv": self.argv, "stdin": self.stdin, "exit_code": self.exit_code,
                "stdout": self.stdout[:STDERR_KEEP], "stderr": self.stderr[-STDERR_KEEP:],
                "duration_s": round(self.duration_s, 3), "problem": self.problem}


def run_transaction(command: list[str], operation: str, args: list[str], *,
                    env: dict[str, str], stdin: dict[str, Any] | None,
                    timeout_s: float) -> Outcome:
    """Run ``command… OPERATION ARGS``; never raises for anything the terminal does."""
    argv = [*command, operation, *args]
    start = time.monotonic()
    data = json.dumps(stdin, ensure_ascii=False).encode("utf-8") if stdin is not None else b""
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=terminal_environment(env),
                                start_new_session=True)
    except OSError as exc:
        return Outcome(argv, None, "", "", 0.0, problem=f"the terminal program could not be "
                       f"started: {exc}", problem_zh=f"终端程序无法启动：{exc}", stdin=stdin)
    try:
        out, err = proc.communicate(data, timeout=timeout_s)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        _kill(proc)
        out, err = proc.communicate()
        code = None
    duration = time.monotonic() - start
    outcome = Outcome(argv, code, out.decode("utf-8", errors="replace"),
                      err.decode("utf-8", errors="replace"), duration, stdin=stdin)
    _read_document(outcome, out, timeout_s)
    return outcome


def terminal_environment(env: dict[str, str]) -> dict[str, str]:
    """The terminal's environment: ours with the contract's variables, and the suite's own
    bin directory at the end of PATH, so a profile may name `rhc` (the reference terminal)
    without an activated virtual environment, while the lab's own programs still win."""
    merged = {**os.environ, **env}
    path = merged.get("PATH", os.defpath)
    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in path.split(os.pathsep):
        merged["PATH"] = os.pathsep.join(filter(None, [path, bin_dir]))
    return merged


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill the program and everything it started (its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _read_document(o: Outcome, raw: bytes, timeout_s: float) -> None:
    if o.exit_code is None:
        o.problem = f"the terminal did not end within timeout_s = {timeout_s:g} s and was killed"
        o.problem_zh = f"终端未在 timeout_s = {timeout_s:g} 秒内结束，已被终止"
        return
    if o.exit_code < 0:
        name = signal.Signals(-o.exit_code).name if -o.exit_code in signal.valid_signals() \
            else str(-o.exit_code)
        o.problem = f"the terminal crashed (killed by signal {name})"
        o.problem_zh = f"终端崩溃（信号 {name}）"
        return
    try:
        text = raw.decode("utf-8")
        o.document = json.loads(text)
    except UnicodeDecodeError:
        o.problem = "standard output is not UTF-8"
        o.problem_zh = "标准输出不是 UTF-8"
    except json.JSONDecodeError as exc:
        shown = raw[:60].decode("utf-8", errors="replace")
        what = "empty" if not raw.strip() else f"not one JSON document ({exc.msg}): {shown!r}"
        o.problem = f"exit status {o.exit_code}, standard output {what}"
        shape = "为空" if not raw.strip() else "不是一个 JSON 文档"
        o.problem_zh = f"退出码 {o.exit_code}，标准输出{shape}"
    else:
        if not isinstance(o.document, dict):
            o.problem = f"standard output is JSON but not an object: {o.document!r:.60}"
            o.problem_zh = "标准输出是 JSON 但不是对象"
        elif o.exit_code != 0 and o.document.get("status") != "error":
            o.problem = (f"exit status {o.exit_code} without {{\"status\": \"error\"}} on "
                         "standard output")
            o.problem_zh = f"退出码 {o.exit_code}，但标准输出没有 {{\"status\": \"error\"}}"
