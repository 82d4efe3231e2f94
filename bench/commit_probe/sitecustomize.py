"""Counts SQLAlchemy transaction commits in a process, for bench/load_bench.py --count-commits.

Put this directory first on PYTHONPATH and set BENCH_COMMIT_PROBE to a directory: every Python
process started that way counts the commits of every SQLAlchemy engine it creates and writes
the total, by call site, to BENCH_COMMIT_PROBE/commits-<pid>.txt when it exits. (PostgreSQL's
own xact_commit also counts the pool's pre-ping `SELECT 1`, run in autocommit on each checkout.)
"""

import atexit
import collections
import os
import traceback

_directory = os.environ.get("BENCH_COMMIT_PROBE")
if _directory:
    _counts: collections.Counter = collections.Counter()
    try:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        @event.listens_for(Engine, "commit")
        def _on_commit(_connection):
            frames = [f for f in traceback.extract_stack()[:-1] if "/bot/" in f.filename and "/db/" not in f.filename]
            _counts[" < ".join(f"{os.path.basename(f.filename)}:{f.name}" for f in frames[-3:][::-1])] += 1

        def _dump():
            if _counts:
                with open(os.path.join(_directory, f"commits-{os.getpid()}.txt"), "w") as out:
                    for site, count in _counts.most_common():
                        out.write(f"{count} {site}\n")

        atexit.register(_dump)
    except ImportError:
        pass
