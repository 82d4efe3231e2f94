"""Service benchmark: ack latency, queue pickup latency, event → first Slack post, memory.

    python -m bench.service_bench [--rate 50] [--seconds 20] [--runs 3]

Starts a scratch PostgreSQL database, the fake Slack and an instant fake model (no latency,
limits raised so they never bind: this measures the pipeline, not the rate limits), one web
process (`bot web`, gunicorn with WEB_CONCURRENCY=1) and one worker (`bot worker`). It then
sends signed `app_mention` events at a fixed rate, each in its own channel, and measures:

- ack latency: from sending a request to its HTTP response, at the client;
- queue pickup latency: a job's `started_at - created_at` (both from the database clock);
- event → first Slack post: from sending the event to the fake Slack receiving the first
  write in that channel (chat.startStream or chat.postMessage), on one monotonic clock;
- resident memory (VmRSS) of the web processes and the worker, sampled every 0.5 s; peak.

Each run prints its figures; the summary is the median over runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from bot.config import normalize_database_url
from bot.db.migrate import upgrade
from tests.fakes.inference import FakeInference
from tests.fakes.slack import FakeSlack
from tests.support import slack_requests as sr
from tests.support.processes import INFERENCE_KEY, SIGNING_SECRET, bot_env, start_web, start_worker

ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
WRITE_METHODS = ("chat.startStream", "chat.postMessage")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def admin_execute(statement: str) -> None:
    engine = create_engine(normalize_database_url(ADMIN_URL), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(statement))
    engine.dispose()


def one_run(rate: float, seconds: float, log_dir: Path, *, with_worker: bool = True) -> dict:
    name = f"bench_service_{uuid.uuid4().hex[:8]}"
    admin_execute(f'CREATE DATABASE "{name}"')
    database_url = normalize_database_url(ADMIN_URL).rsplit("/", 1)[0] + f"/{name}"
    processes = []
    try:
        upgrade(database_url)
        with FakeSlack() as slack, FakeInference(api_key=INFERENCE_KEY) as inference:
            env = bot_env(
                database_url,
                SLACK_API_URL=slack.api_url,
                INFERENCE_URL=inference.url,
                WEB_CONCURRENCY="1",
                WORKER_CONCURRENCY="16",
                INFERENCE_MAX_REQUESTS_PER_MINUTE="1000000",
                INFERENCE_MAX_TOKENS_PER_MINUTE="1000000000",
                LOG_LEVEL="WARNING",
            )
            web, url = start_web(env, log_dir, name=f"web-{name}")
            processes.append(web)
            worker = start_worker({**env, "LOG_LEVEL": "INFO"}, log_dir, name=f"worker-{name}") if with_worker else None
            if worker:
                processes.append(worker)

            peaks = {"web": 0.0, "worker": 0.0}
            sampling = threading.Event()

            def sample():
                while not sampling.is_set():
                    web_pids = [web.proc.pid, *children(web.proc.pid)]
                    peaks["web"] = max(peaks["web"], max(rss_mb(pid) for pid in web_pids))
                    if worker:
                        peaks["worker"] = max(peaks["worker"], rss_mb(worker.proc.pid))
                    time.sleep(0.5)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()

            total = int(rate * seconds)
            sent_at: dict[str, float] = {}
            acks: list[float] = []
            failures = 0
            client = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=64))

            def send(channel: str) -> None:
                nonlocal failures
                body = sr.event_callback(sr.app_mention("<@UBOT> benchmark", channel=channel))
                import json

                raw = json.dumps(body).encode()
                headers = {**sr.signed_headers(SIGNING_SECRET, raw), "Content-Type": "application/json"}
                started = time.monotonic()
                sent_at[channel] = started
                try:
                    response = client.post(f"{url}/slack/events", content=raw, headers=headers)
                    if response.status_code != 200:
                        failures += 1
                except httpx.HTTPError:
                    failures += 1
                acks.append(time.monotonic() - started)

            with ThreadPoolExecutor(32) as pool:
                start = time.monotonic()
                for n in range(total):
                    target = start + n / rate
                    delay = target - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    pool.submit(send, f"CB{n:06d}")
            deadline = time.monotonic() + (120 if worker else 0)
            while time.monotonic() < deadline:
                posted = {c.params.get("channel") for c in slack.all_calls() if c.method in WRITE_METHODS}
                if len(posted & set(sent_at)) >= total:
                    break
                time.sleep(0.2)
            sampling.set()
            sampler.join(2)
            first_post: dict[str, float] = {}
            for call in slack.all_calls():
                channel = call.params.get("channel")
                if call.method in WRITE_METHODS and channel in sent_at and channel not in first_post:
                    first_post[channel] = call.time - sent_at[channel]
            engine = create_engine(database_url)
            with engine.connect() as connection:
                pickups = [
                    float(row[0])
                    for row in connection.execute(
                        text(
                            "SELECT extract(epoch FROM started_at - created_at) FROM jobs "
                            "WHERE started_at IS NOT NULL AND kind = 'reply'"
                        )
                    )
                ]
            engine.dispose()
            client.close()
            return {
                "events": total,
                "failures": failures,
                "ack_p50_ms": percentile(acks, 50) * 1000,
                "ack_p99_ms": percentile(acks, 99) * 1000,
                "pickup_p50_ms": percentile(pickups, 50) * 1000,
                "pickup_p99_ms": percentile(pickups, 99) * 1000,
                "first_post_p50_ms": percentile(list(first_post.values()), 50) * 1000,
                "first_post_p99_ms": percentile(list(first_post.values()), 99) * 1000,
                "answered": len(first_post),
                "web_rss_peak_mb": peaks["web"],
                "worker_rss_peak_mb": peaks["worker"],
            }
    finally:
        for process in processes:
            process.stop()
        admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-worker", action="store_true", help="web alone: ack latency without a worker")
    args = parser.parse_args(argv)
    log_dir = Path("bench/results") / time.strftime("service-%Y%m%d-%H%M%S")
    log_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    for n in range(args.runs):
        result = one_run(args.rate, args.seconds, log_dir, with_worker=not args.no_worker)
        runs.append(result)
        print(
            f"run {n + 1}: "
            + ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()),
            flush=True,
        )
    keys = [k for k in runs[0] if k not in ("events",)]
    mode = "web alone" if args.no_worker else "web + worker"
    print(f"\nmedian of {len(runs)} runs, {mode}, {args.rate:g} events/s for {args.seconds:g} s each:\n")
    print("| figure | median | runs |\n|---|---:|---|")
    for key in keys:
        values = [run[key] for run in runs]
        print(f"| {key} | {statistics.median(values):.1f} | {', '.join(f'{v:.1f}' for v in values)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
