"""The child's side (`python -m bot.sandbox.child`): read the pickled (function, arguments,
bounds) from stdin (written by our own parent), import what they need, limit the process, run,
and write the outcome to stdout as JSON, never pickle, so even a child taken over by hostile
input cannot make its parent run code: ["ok", value, peak RSS bytes], ["memory"] or ["error",
type name, message]. Progress goes to stderr as "progress=N" lines."""

from __future__ import annotations

import json
import logging
import os
import pickle
import resource
import sys
import warnings
from typing import Any

PROGRESS_PREFIX = "progress="
MARKER = "BOT_SANDBOX_CHILD"  # set in the child's environment by the parent (bot.sandbox.runner)


def report_progress(done: int) -> None:
    """Record how far the work got (pages read, ...): the parent reads it if it has to stop the
    child. Does nothing outside a sandbox."""
    if os.environ.get(MARKER) == "1":
        sys.stderr.write(f"{PROGRESS_PREFIX}{int(done)}\n")
        sys.stderr.flush()


def _address_space_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def limit_resources(memory_bytes: int, cpu_seconds: float) -> None:
    """Memory: what the child has mapped now (the interpreter and the modules it imported) plus
    `memory_bytes`, the growth, which is what the dyno pays for. CPU: `cpu_seconds` from now;
    the soft limit sends SIGXCPU, whose default action ends the process."""
    try:
        current = _address_space_bytes()
    except OSError:  # no /proc: bound the total instead
        current = 0
    limit = current + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    used = resource.getrusage(resource.RUSAGE_SELF)
    soft = max(1, int(used.ru_utime + used.ru_stime + cpu_seconds + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 1))


def peak_rss_bytes() -> int:
    """This process's own peak resident memory (VmHWM: since exec, unlike getrusage's ru_maxrss,
    which keeps the parent's image from before the exec)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def main() -> None:
    logging.disable(logging.CRITICAL)  # a damaged file makes parsers warn per object: not our log
    warnings.simplefilter("ignore")
    out = sys.stdout.buffer
    try:
        request = sys.stdin.buffer.read()
        function, args, memory_bytes, cpu_seconds = pickle.loads(request)  # noqa: S301 - from our parent
        limit_resources(memory_bytes, cpu_seconds)
        outcome: tuple[Any, ...] = ("ok", function(*args), peak_rss_bytes())
        data = json.dumps(outcome).encode()
    except MemoryError:
        data = json.dumps(("memory",)).encode()
    except Exception as exc:  # reported by type: the parent decides what the person hears
        data = json.dumps(("error", type(exc).__name__, str(exc)[:500])).encode()
    out.write(data)
    out.flush()


if __name__ == "__main__":
    main()
