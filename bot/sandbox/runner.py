"""The parent side of the sandbox: start a child interpreter, give it the work, wait for its
outcome within a deadline, kill it otherwise. See bot.sandbox for the model.

A fresh interpreter (`python -m bot.sandbox.child`), not `fork()`: a worker has threads, open
connections and locks, which a forked child would inherit half-held; and not multiprocessing's
fork server, which re-imports the parent's `__main__` in every child."""

from __future__ import annotations

import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.sandbox.child import MARKER, PROGRESS_PREFIX

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bounds:
    cpu_seconds: float = 10.0
    memory_bytes: int = 128 * 1024 * 1024  # growth of the child's address space
    wall_seconds: float = 20.0


class SandboxError(Exception):
    """The sandboxed work did not produce a result."""


class SandboxExceeded(SandboxError):
    """Stopped at a bound: ``what`` is "time" (CPU or wall clock) or "memory"; ``progress`` is
    what the child last reported (`report_progress`)."""

    def __init__(self, what: str, progress: int = 0):
        super().__init__(f"stopped: too much {what}")
        self.what = what
        self.progress = progress


class SandboxCrashed(SandboxError):
    """The child raised (``error_type``) or died without an answer."""

    def __init__(self, error_type: str, message: str = ""):
        super().__init__(f"{error_type}: {message}" if message else error_type)
        self.error_type = error_type


def _progress(stderr: bytes) -> int:
    for line in reversed(stderr.decode("utf-8", "replace").splitlines()):
        if line.startswith(PROGRESS_PREFIX):
            try:
                return int(line[len(PROGRESS_PREFIX) :])
            except ValueError:
                return 0
    return 0


def child_environment() -> dict[str, str]:
    """What the child inherits: where Python and our code are, nothing else (no tokens, no
    database URL: hostile input that took the child over finds no secret)."""
    keep = ("PATH", "PYTHONPATH", "VIRTUAL_ENV", "LANG", "LC_ALL", "TMPDIR", "HOME")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH", "")]))
    env[MARKER] = "1"
    return env


class Sandbox:
    def __init__(self, *, slots: int = 2):
        self._slots = threading.BoundedSemaphore(slots)
        self.peak_rss_bytes = 0  # the largest child's own peak memory so far (a measure, for logs and benchmarks)

    def run(self, function: Callable[..., Any], *args: Any, bounds: Bounds = Bounds()) -> Any:
        """`function(*args)` (a module-level function; its result JSON) in a child within `bounds`: its result,
        or SandboxExceeded / SandboxCrashed. Waiting for a free slot counts against the wall
        clock deadline."""
        deadline = time.monotonic() + bounds.wall_seconds
        request = pickle.dumps((function, args, bounds.memory_bytes, bounds.cpu_seconds))
        if not self._slots.acquire(timeout=bounds.wall_seconds):
            raise SandboxExceeded("time")
        try:
            return self._run(request, deadline)
        finally:
            self._slots.release()

    def _run(self, request: bytes, deadline: float) -> Any:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.sandbox.child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
            env=child_environment(),
        )
        try:
            stdout, stderr = process.communicate(request, timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            raise SandboxExceeded("time", _progress(stderr)) from None
        except BaseException:
            process.kill()
            process.wait()
            raise
        if process.returncode in (-signal.SIGXCPU, -signal.SIGKILL):  # the CPU limit, or the OOM killer
            raise SandboxExceeded("time" if process.returncode == -signal.SIGXCPU else "memory", _progress(stderr))
        try:
            outcome = json.loads(stdout)
        except ValueError:
            log.warning("sandbox child died exitcode=%s", process.returncode)
            raise SandboxCrashed("died", f"exit code {process.returncode}") from None
        if outcome[0] == "ok":
            self.peak_rss_bytes = max(self.peak_rss_bytes, int(outcome[2]))
            return outcome[1]
        if outcome[0] == "memory":
            raise SandboxExceeded("memory", _progress(stderr))
        raise SandboxCrashed(outcome[1], outcome[2])
