"""Run untrusted or costly work where the operating system can stop it.

A thread that outlives its timeout is not a bound: it keeps the interpreter (and, with pure
Python work, the lock every other thread needs) until it is done. `Sandbox.run` runs a function
in a fresh child interpreter (bot.sandbox.child), with

- ``RLIMIT_AS``: the child's address space may grow by at most ``Bounds.memory_bytes``; beyond
  it allocations fail (MemoryError) instead of the dyno swapping;
- ``RLIMIT_CPU``: the kernel stops it after ``Bounds.cpu_seconds`` of CPU time;
- a wall-clock deadline: the parent kills it after ``Bounds.wall_seconds``.

At most ``slots`` children run at once per process (a small pool; more wait their turn, within
their deadline). The function and its arguments are pickled (a module-level function); its
result comes back as JSON. The child gets no secret from the environment. A child may report
how far it got (`report_progress`), so a stopped run can still say "stopped after N pages".
POSIX only (`resource`).
"""

from __future__ import annotations

from bot.sandbox.child import report_progress
from bot.sandbox.runner import Bounds, Sandbox, SandboxCrashed, SandboxError, SandboxExceeded

__all__ = ["Bounds", "Sandbox", "SandboxCrashed", "SandboxError", "SandboxExceeded", "report_progress"]
