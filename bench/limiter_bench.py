"""Queue + global limiter benchmark: two real worker processes against a rate-limited fake.

    python -m bench.limiter_bench [--workload requests|tokens|both|inflight|all]
                                  [--window S] [--jobs N] [--concurrency C]

For each workload it starts a fresh fake inference server (tests/fakes/inference.py, its own
process, same sliding-window limits as Heroku: 200 requests and 800,000 tokens per window,
1-3 s latency), a scratch Postgres database with every job enqueued up front, and two
``bench.bench_worker`` processes; then, against another fresh fake, the naive client
(bench/naive_client.py) with the same total concurrency. It prints markdown tables and
writes the raw figures to bench/results/. Every run is bounded by a deadline and removes
its processes and databases on the way out, failure or not.

Definitions (printed with the tables):
- saturation: from the fake's first admitted arrival to its last one (all jobs are queued
  before the workers start, so work is waiting throughout); utilization counts the whole
  windows [a0 + iW, a0 + (i+1)W) inside that span, from the fake's own arrival times:
  admitted requests (or tokens charged) in them / (windows x limit).
- ideal span: (ceil(N / capacity) - 1) windows from the first arrival to the last, where
  capacity is requests per window (or the limit / mean tokens per request, if smaller).
- lost: enqueued jobs not done when the run ended (or never admitted by the fake);
  duplicated: jobs whose request the fake admitted more than once.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import select
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.bench_worker import BENCH_JOB, JOB_ID_FIELD
from bench.naive_client import run_naive
from bot.limits.tokens import estimate_request_tokens
from tests.fakes.inference import FakeInference, fake_prompt_tokens

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
API_KEY = "bench-inference-key"
MAX_REQUESTS = 200
MAX_TOKENS = 800_000
PROBE = "in-flight probe"
TOKEN_PROMPT_TARGET = 8_000  # fake tokens per prompt in the token-bound workload


# -- the fake, as its own process, recording each request's fate ------------------------


class RecordingFake(FakeInference):
    """The test fake, plus a record per rate-limit decision: (arrival, tokens, admitted, job id)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.decisions: list[tuple[float, int, bool, int | None]] = []
        self._current = threading.local()

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        self._current.job_id = body.get(JOB_ID_FIELD)  # _admit runs next, on this thread
        return super()._answer(body)

    def _admit(self, now: float, tokens: int, reserved: int | None = None):
        refusal, headers, charge = super()._admit(now, tokens, reserved)
        # The charge object: under "corrected" accounting its tokens change when the answer ends.
        self.decisions.append((now, charge or tokens, refusal is None, getattr(self._current, "job_id", None)))
        return refusal, headers, charge

    def final_decisions(self) -> list[tuple[float, int, bool, int | None]]:
        with self._lock:
            return [
                (at, charged if isinstance(charged, int) else charged.tokens, ok, job)
                for at, charged, ok, job in self.decisions
            ]


def serve_fake(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", required=True)
    parser.add_argument("--max-requests", type=int, required=True)
    parser.add_argument("--max-tokens", type=int, required=True)
    parser.add_argument("--window", type=float, required=True)
    parser.add_argument("--latency-min", type=float, required=True)
    parser.add_argument("--latency-max", type=float, required=True)
    args = parser.parse_args(argv)
    fake = RecordingFake(
        api_key=API_KEY,
        max_requests=args.max_requests,
        max_tokens=args.max_tokens,
        window=args.window,
        latency_min=args.latency_min,
        latency_max=args.latency_max,
    ).start()
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    print(fake.url, flush=True)
    stop.wait()
    fake.stop()
    decisions = fake.final_decisions()
    Path(args.records).write_text(json.dumps({"decisions": decisions, "stats": fake.stats()}))
    return 0


# -- workloads ------------------------------------------------------------------------------

WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but have an they "
    "you were her all she there would their we him been has when who will more no if out so said what up its "
    "about into than them can only other new some could time these two may then do first any my now such like "
    "our over man me even most made after also did many before must through back years where much your way well "
    "down should because each just those people how too little state good very make world still own see men work "
    "long get here between both life being under never day same another know while last might us great old year "
    "off come since against go came right used take three weather forecast channel thread message summary answer"
).split()


def english_text(rng: random.Random, chars: int) -> str:
    """Plain English-looking prose of about ``chars`` characters (sentences of common words)."""
    parts, size = [], 0
    while size < chars:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18))).capitalize() + ". "
        parts.append(sentence)
        size += len(sentence)
    return "".join(parts)[:chars]


@dataclass(frozen=True)
class Workload:
    name: str
    binding: str  # "requests" or "tokens"
    max_output_tokens: int

    def body(self, index: int) -> dict[str, Any]:
        rng = random.Random(f"{self.name}-{index}")
        if self.binding == "requests":
            question = f"Question {index}: " + english_text(rng, 120)
        else:
            question = english_text(rng, TOKEN_PROMPT_TARGET * 4 - 200)
        return {
            "messages": [
                {"role": "system", "content": "You are a helpful assistant in a Slack workspace."},
                {"role": "user", "content": question},
            ],
            "max_tokens": self.max_output_tokens,
        }


WORKLOADS = {
    "requests": Workload("requests", "requests", 64),
    "tokens": Workload("tokens", "tokens", 16),
}


# -- processes and databases ----------------------------------------------------------------


class Child:
    """A process we started, in its own session so we can signal it (and only it) by id."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, *, capture: bool = False):
        self.log_path = log_path
        self._log = open(log_path, "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            args,
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE if capture else self._log,
            stderr=self._log,
            start_new_session=True,
        )

    def read_line(self, timeout: float) -> str:
        """The next stdout line (capture mode), or RuntimeError after ``timeout``."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError(f"{self.log_path.name}: no output within {timeout}s")
        line = self.proc.stdout.readline().decode().strip()
        if not line:
            raise RuntimeError(f"{self.log_path.name} exited: {self.log_path.read_text()[-2000:]}")
        return line

    def stop(self, timeout: float = 40.0) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


def start_fake(
    stack: ExitStack, run_dir: Path, tag: str, window: float, latency: tuple[float, float], *, limited: bool = True
) -> tuple[Child, str, Path]:
    records = run_dir / f"fake-{tag}.json"
    limits = (MAX_REQUESTS, MAX_TOKENS) if limited else (10**9, 10**12)
    fake = Child(
        [
            sys.executable,
            "-m",
            "bench.limiter_bench",
            "--serve-fake",
            "--records",
            str(records),
            "--max-requests",
            str(limits[0]),
            "--max-tokens",
            str(limits[1]),
            "--window",
            str(window),
            "--latency-min",
            str(latency[0]),
            "--latency-max",
            str(latency[1]),
        ],
        dict(os.environ),
        run_dir / f"fake-{tag}.log",
        capture=True,
    )
    stack.callback(fake.stop)
    return fake, fake.read_line(20), records


def stop_fake(fake: Child, records: Path) -> dict[str, Any]:
    fake.stop()
    return json.loads(records.read_text())


def create_database(stack: ExitStack, name: str) -> str:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    stack.callback(drop_database, name)
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    from bot.db.migrate import upgrade

    upgrade(url)
    return url


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def enqueue_jobs(url: str, workload: Workload, jobs: int) -> None:
    from bot.db.engine import make_engine, make_session_factory
    from bot.queue import store

    engine = make_engine(url)
    try:
        with make_session_factory(engine).begin() as session:
            for index in range(jobs):
                store.enqueue(
                    session,
                    kind=BENCH_JOB,
                    payload={"body": workload.body(index)},
                    team_id="TBENCH",
                    user_id=f"U{index % 50:03d}",
                )
    finally:
        engine.dispose()


def job_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
        rows = connection.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall()
    return {status: count for status, count in rows}


def database_transactions(url: str) -> int:
    """Commits in the scratch database so far (claims, admissions, reconciliations, ...)."""
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
        return int(
            connection.execute(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()[0]
        )


def dump_log(url: str, path: Path) -> None:
    """The limiter's log (rate_reservations: the last few windows), for replaying its decisions."""
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
        cursor = connection.execute("SELECT * FROM rate_reservations ORDER BY id")
        names = [c.name for c in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    path.write_text(json.dumps(rows, default=str))


def finished_jobs(url: str) -> tuple[set[int], set[int], int]:
    """(ids of all jobs, ids of jobs done, attempts beyond the first summed over all jobs)."""
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
        rows = connection.execute("SELECT id, status, attempts FROM jobs").fetchall()
    return {r[0] for r in rows}, {r[0] for r in rows if r[1] == "done"}, sum(max(r[2] - 1, 0) for r in rows)


def worker_env(
    database_url: str, fake_url: str, window: float, concurrency: int, margin: float | None, limited: bool
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "INFERENCE_", "DATABASE_", "MODERATION_", "JOB_", "WORKER_", "DAILY_"))
    }
    env.update(
        DATABASE_URL=database_url,
        INFERENCE_URL=fake_url,
        INFERENCE_KEY=API_KEY,
        INFERENCE_RATE_WINDOW_SECONDS=str(window),
        INFERENCE_MAX_REQUESTS_PER_MINUTE=str(MAX_REQUESTS if limited else 10**9),
        INFERENCE_MAX_TOKENS_PER_MINUTE=str(MAX_TOKENS if limited else 10**12),
        WORKER_CONCURRENCY=str(concurrency),
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    if margin is not None:
        env["INFERENCE_RATE_MARGIN_SECONDS"] = str(margin)
    return env


class ProcSampler:
    """CPU and memory of some processes, from /proc, sampled on a thread."""

    TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, pids: list[int], database_url: str, interval: float = 0.5):
        self.pids = pids
        self.database_url = database_url.replace("postgresql+psycopg", "postgresql")
        self.peak_connections = 0
        self.interval = interval
        self.peak_rss = dict.fromkeys(pids, 0)
        self.peak_threads = dict.fromkeys(pids, 0)
        self.cpu_start: dict[int, float] = {}
        self.cpu_end: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _cpu(self, pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.TICKS  # utime + stime

    def _sample(self) -> None:
        for pid in self.pids:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                self.cpu_end[pid] = self._cpu(pid)
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    self.peak_rss[pid] = max(self.peak_rss[pid], int(line.split()[1]) * 1024)
                elif line.startswith("Threads:"):
                    self.peak_threads[pid] = max(self.peak_threads[pid], int(line.split()[1]))

    def _run(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            while not self._stop.wait(self.interval):
                self._sample()
                connected = connection.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                ).fetchone()[0]
                self.peak_connections = max(self.peak_connections, connected)

    def start(self) -> None:
        self.started = time.monotonic()
        for pid in self.pids:
            self.cpu_start[pid] = self._cpu(pid)
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self._sample()
        self._stop.set()
        self._thread.join(2)
        wall = time.monotonic() - self.started
        return {
            "cpu_percent": [100 * (self.cpu_end[p] - self.cpu_start[p]) / wall for p in self.pids],
            "peak_rss_mb": [self.peak_rss[p] / 2**20 for p in self.pids],
            "peak_threads": [self.peak_threads[p] for p in self.pids],
            "peak_connections": self.peak_connections,
        }


# -- analysis -------------------------------------------------------------------------------


def analyse(decisions: list[list], window: float, jobs: int, binding: str) -> dict[str, Any]:
    """Utilization, 429s, duplicates and spans from the fake's own records."""
    admitted = sorted((d for d in decisions if d[2]), key=lambda d: d[0])
    refused = sum(1 for d in decisions if not d[2])
    per_job = Counter(d[3] for d in admitted)
    result: dict[str, Any] = {
        "responses_429": refused,
        "admitted": len(admitted),
        "duplicated": sum(1 for job, n in per_job.items() if job is not None and n > 1),
        "admitted_job_ids": {job for job in per_job if job is not None},
    }
    if not admitted:
        return result
    first, last = admitted[0][0], admitted[-1][0]
    mean_tokens = statistics.fmean(d[1] for d in admitted)
    capacity = min(MAX_REQUESTS, math.floor(MAX_TOKENS / mean_tokens))
    whole = int((last - first) // window)
    windows = [[0, 0] for _ in range(whole)]
    for arrival, tokens, _, _ in admitted:
        index = int((arrival - first) // window)
        if index < whole:
            windows[index][0] += 1
            windows[index][1] += tokens
    ideal_span = (math.ceil(jobs / capacity) - 1) * window
    result.update(
        windows=windows,
        mean_tokens=mean_tokens,
        capacity=capacity,
        span=last - first,
        ideal_span=ideal_span,
    )
    sliding_span = last - window - first
    if sliding_span > 0:
        # The mean, over every window position [t, t + W) inside the span, of its use.
        def covered(arrival: float) -> float:
            return max(0.0, min(last - window, arrival) - max(first, arrival - window))

        result["sliding_requests"] = sum(covered(d[0]) for d in admitted) / (sliding_span * MAX_REQUESTS)
        result["sliding_tokens"] = sum(covered(d[0]) * d[1] for d in admitted) / (sliding_span * MAX_TOKENS)
        result["sliding_binding"] = result["sliding_requests" if binding == "requests" else "sliding_tokens"]
    if whole:
        result["util_requests"] = sum(w[0] for w in windows) / (whole * MAX_REQUESTS)
        result["util_tokens"] = sum(w[1] for w in windows) / (whole * MAX_TOKENS)
        result["util_binding"] = result["util_requests" if binding == "requests" else "util_tokens"]
    return result


def run_budget_seconds(opts: Options, workload: Workload, limited: bool) -> float:
    """Three times the ideal duration, plus a minute and a half: then the run is cut short."""
    if not limited:
        return 3 * opts.jobs / (opts.workers * opts.concurrency) * opts.latency[1] + 90
    per_window = MAX_REQUESTS if workload.binding == "requests" else MAX_TOKENS // TOKEN_PROMPT_TARGET
    return 3 * math.ceil(opts.jobs / per_window) * opts.window + 90


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- one run --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    window: float
    jobs: int
    concurrency: int
    workers: int
    latency: tuple[float, float]
    margin: float | None
    naive: bool


def run_limited(opts: Options, workload: Workload, run_dir: Path, *, limited: bool = True) -> dict[str, Any]:
    """The queue + limiter: ``opts.workers`` worker processes, one shared database and fake."""
    tag = f"{workload.name}-limiter" if limited else "inflight"
    with ExitStack() as stack:
        fake, fake_url, records = start_fake(stack, run_dir, tag, opts.window, opts.latency, limited=limited)
        database = f"bench_limiter_{os.getpid()}_{tag.replace('-', '_')}"
        url = create_database(stack, database)
        enqueue_jobs(url, workload, opts.jobs)
        env = worker_env(url, fake_url, opts.window, opts.concurrency, opts.margin, limited)
        workers = []
        for number in range(opts.workers):
            stats_path = run_dir / f"worker-{tag}-{number}.json"
            child = Child(
                [sys.executable, "-m", "bench.bench_worker", "--stats-out", str(stats_path)],
                env,
                run_dir / f"worker-{tag}-{number}.log",
                capture=True,
            )
            stack.callback(child.stop)
            workers.append((child, stats_path))
        for child, _ in workers:
            child.read_line(30)
        sampler = ProcSampler([child.proc.pid for child, _ in workers], url)
        sampler.start()
        transactions_before = database_transactions(url)
        started = time.monotonic()
        deadline = started + run_budget_seconds(opts, workload, limited)
        finished_at = None
        while time.monotonic() < deadline:
            counts = job_counts(url)
            if counts.get("queued", 0) + counts.get("running", 0) == 0:
                finished_at = time.monotonic()
                break
            if any(child.proc.poll() is not None for child, _ in workers):
                break
            time.sleep(0.25)
        resources = sampler.stop()
        time.sleep(0.6)  # pg_stat_database is refreshed about every 500 ms
        transactions = database_transactions(url) - transactions_before
        for child, _ in workers:
            child.stop()
        worker_stats = [json.loads(path.read_text()) if path.exists() else {} for _, path in workers]
        all_jobs, done, extra_attempts = finished_jobs(url)
        if limited:
            dump_log(url, run_dir / f"rate_reservations-{tag}.json")
        recorded = stop_fake(fake, records)

    report = analyse(recorded["decisions"], opts.window, opts.jobs, workload.binding)
    delays = [delay for stats in worker_stats for delay in stats.get("send_delays", [])]
    report.update(
        client=f"queue+limiter, {opts.workers} workers x {opts.concurrency}" if limited else "one worker, no limit",
        lost=len(all_jobs - (done & report.pop("admitted_job_ids"))),
        wall=(finished_at or time.monotonic()) - started,
        finished=finished_at is not None,
        extra_attempts=extra_attempts,
        transactions=transactions,
        resources=resources,
        send_delay_p50=percentile(delays, 0.5),
        send_delay_p99=percentile(delays, 0.99),
        send_delay_max=max(delays, default=float("nan")),
        peak_inflight=[w.get("peak_inflight") for w in worker_stats],
        mean_inflight=[w.get("mean_inflight") for w in worker_stats],
        worker_429=sum(w.get("rate_limited", 0) for w in worker_stats),
    )
    return report


def run_naive_workload(opts: Options, workload: Workload, run_dir: Path) -> dict[str, Any]:
    bodies = [
        {**workload.body(index), "model": "claude-4-5-haiku", JOB_ID_FIELD: index + 1} for index in range(opts.jobs)
    ]
    with ExitStack() as stack:
        fake, fake_url, records = start_fake(stack, run_dir, f"{workload.name}-naive", opts.window, opts.latency)
        result = run_naive(fake_url, API_KEY, bodies, concurrency=opts.workers * opts.concurrency)
        recorded = stop_fake(fake, records)
    report = analyse(recorded["decisions"], opts.window, opts.jobs, workload.binding)
    admitted_ids = report.pop("admitted_job_ids")
    report.update(
        client=f"naive SDK-style, {opts.workers * opts.concurrency} threads",
        lost=opts.jobs - len(admitted_ids),
        failed_requests=result.failed,
        wall=result.wall_seconds,
        finished=True,
    )
    return report


def estimate_ratio(workload: Workload) -> tuple[int, int]:
    """(our estimate, the fake's charge) for one typical request of ``workload``."""
    body = {**workload.body(0), "model": "claude-4-5-haiku"}
    charged = fake_prompt_tokens(body) + min(workload.max_output_tokens, 40)
    return estimate_request_tokens(body), charged


# -- reporting ------------------------------------------------------------------------------


def fmt(value: Any, spec: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, spec)


def results_table(rows: list[tuple[str, dict[str, Any]]], window: float) -> str:
    lines = [
        "| workload | client | jobs done / lost / dup | 429s | utilization, whole windows (binding) "
        "| utilization, sliding mean (binding) | whole windows: requests, tokens / limit "
        "| arrival span vs ideal | wall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        if name == PROBE:
            continue
        windows = r.get("windows", [])
        lines.append(
            f"| {name} | {r['client']} | {r['admitted'] - r['duplicated']} / {r['lost']} / {r['duplicated']} "
            f"| {r['responses_429']} | **{fmt(r.get('util_binding'))}** ({len(windows)} x {window:g} s) "
            f"| **{fmt(r.get('sliding_binding'))}** | {fmt(r.get('util_requests'))}, {fmt(r.get('util_tokens'))} "
            f"| {fmt(r.get('span'), '.1f')} s vs {fmt(r.get('ideal_span'), '.1f')} s "
            f"| {r['wall']:.1f} s{'' if r['finished'] else ' (deadline hit)'} |"
        )
    return "\n".join(lines)


def workers_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    lines = [
        "| workload | jobs/s | worker CPU % (each) | peak RSS MB (each) | threads (each) "
        "| in flight at server: mean / peak (each) | admission→send p50 / p99 / max | job retries "
        "| DB commits per job | peak DB connections (all) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        if "resources" not in r:
            continue
        res = r["resources"]
        inflight = ", ".join(
            f"{fmt(m, '.1f')} / {p}" for m, p in zip(r["mean_inflight"], r["peak_inflight"], strict=True)
        )
        lines.append(
            f"| {name} | {r['admitted'] / r['wall']:.1f} | {', '.join(fmt(c, '.0f') for c in res['cpu_percent'])} "
            f"| {', '.join(fmt(m, '.0f') for m in res['peak_rss_mb'])} "
            f"| {', '.join(str(t) for t in res['peak_threads'])} | {inflight} "
            f"| {fmt(r['send_delay_p50'] * 1000, '.0f')} / {fmt(r['send_delay_p99'] * 1000, '.0f')} / "
            f"{fmt(r['send_delay_max'] * 1000, '.0f')} ms | {r['extra_attempts']} "
            f"| {r['transactions'] / max(1, r['admitted']):.1f} | {res['peak_connections']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-fake"]:
        return serve_fake(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=("requests", "tokens", "both", "inflight", "all"), default="both")
    parser.add_argument("--window", type=float, default=10.0, help="INFERENCE_RATE_WINDOW_SECONDS (limits unscaled)")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per workload (10x the request limit)")
    parser.add_argument("--concurrency", type=int, default=40, help="WORKER_CONCURRENCY of each worker")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--margin", type=float, default=None, help="INFERENCE_RATE_MARGIN_SECONDS (default: the bot's)")
    parser.add_argument("--latency-min", type=float, default=1.0)
    parser.add_argument("--latency-max", type=float, default=3.0)
    parser.add_argument(
        "--inflight-concurrency", type=int, default=90, help="one worker, no limit: stays under 100 connections"
    )
    parser.add_argument("--no-naive", action="store_true")
    args = parser.parse_args(argv)

    def interrupted(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    opts = Options(
        args.window,
        args.jobs,
        args.concurrency,
        args.workers,
        (args.latency_min, args.latency_max),
        args.margin,
        not args.no_naive,
    )
    run_dir = RESULTS / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    names = {"both": ["requests", "tokens"], "all": ["requests", "tokens", "inflight"]}.get(
        args.workload, [args.workload]
    )
    rows: list[tuple[str, dict[str, Any]]] = []
    notes = []
    for name in names:
        if name == "inflight":
            probe = Options(
                opts.window,
                args.inflight_concurrency * 5,
                args.inflight_concurrency,
                1,
                opts.latency,
                opts.margin,
                False,
            )
            rows.append((PROBE, run_limited(probe, WORKLOADS["requests"], run_dir, limited=False)))
            continue
        workload = WORKLOADS[name]
        estimate, charged = estimate_ratio(workload)
        notes.append(
            f"- {name}: one request is estimated at {estimate} tokens and charged about {charged} by the "
            f"fake (estimate / charge = {estimate / charged:.2f})."
        )
        rows.append((name, run_limited(opts, workload, run_dir)))
        print(results_table(rows[-1:], opts.window), file=sys.stderr, flush=True)
        if opts.naive:
            rows.append((name, run_naive_workload(opts, workload, run_dir)))
            print(results_table(rows[-1:], opts.window), file=sys.stderr, flush=True)

    print(
        f"window {opts.window:g} s, limits {MAX_REQUESTS} requests and {MAX_TOKENS:,} tokens per window, "
        f"latency {opts.latency[0]:g}-{opts.latency[1]:g} s, margin "
        f"{'default' if opts.margin is None else opts.margin}, {opts.jobs} jobs per workload\n"
    )
    print(results_table(rows, opts.window))
    print()
    print(workers_table(rows))
    print()
    print("\n".join(notes))
    print(__doc__.split("Definitions (printed with the tables):\n", 1)[1])
    (run_dir / "summary.json").write_text(
        json.dumps(
            [{"workload": name, **{k: v for k, v in r.items() if k != "admitted_job_ids"}} for name, r in rows],
            default=str,
            indent=1,
        )
    )
    print(f"raw figures: {run_dir.relative_to(REPO)}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
