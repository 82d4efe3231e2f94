"""Run the real `bot` processes (gunicorn web, worker) as subprocesses for tests."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bot.http import tls_context

REPO = Path(__file__).resolve().parents[2]
SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
INFERENCE_KEY = "inference-test-key"
# A deadline, not a wait: a process is ready in ~2 s on a quiet machine, but its imports can take
# ten times as long when every core is busy (2 cores shared by several test runs).
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bot_env(database_url: str, **overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "INFERENCE_", "DATABASE_", "MODERATION_", "JOB_", "WORKER_"))
    }
    env.update(
        {
            "DATABASE_URL": database_url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "INFERENCE_KEY": INFERENCE_KEY,
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            # The console scripts of the interpreter running the tests come first.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    env.update(overrides)
    return env


class BotProcess:
    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, *, shell: bool = False):
        self.log_path = log_path
        self._log = open(log_path, "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            # `exec` so signals reach the process itself, as on a dyno.
            args if not shell else "exec " + " ".join(args),
            env=env,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            shell=shell,
            start_new_session=True,
        )

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 30.0) -> int | None:
        self.signal(signal.SIGTERM)
        return self.finish(timeout)

    def finish(self, timeout: float = 30.0) -> int | None:
        """After a SIGTERM: wait for the exit (SIGKILL after ``timeout``) and close the log."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(5)
        self._log.close()  # closing twice is allowed
        return self.proc.returncode

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait(5)
        self._log.close()


def start_together(*starts):
    """Run the start functions side by side (each waits for its own process to be ready): a stack's
    processes import and connect at the same time. If one fails, the others' processes are killed."""
    with concurrent.futures.ThreadPoolExecutor(len(starts)) as pool:
        futures = [pool.submit(start) for start in starts]
    failed = [future.exception() for future in futures if future.exception() is not None]
    if failed:
        for future in futures:
            if future.exception() is None:
                result = future.result()
                for process in result if isinstance(result, tuple) else [result]:
                    if isinstance(process, BotProcess):
                        process.kill()
        raise failed[0]
    return [future.result() for future in futures]


def kill_all(processes: list[BotProcess]) -> None:
    """SIGKILL to every process (and its children) still running; their logs are closed."""
    for process in processes:
        process.signal(signal.SIGKILL)
    for process in processes:
        process.finish(5)


def start_web(env: dict[str, str], log_dir: Path, name: str = "web") -> tuple[BotProcess, str]:
    # Tests run in parallel (pytest-xdist): another worker may take the free port before gunicorn
    # binds it; gunicorn then says "Connection in use" and exits, and another port is tried.
    for attempt in range(3):
        port = free_port()
        process = BotProcess(
            [sys.executable, "-m", "bot.cli", "web"], {**env, "PORT": str(port)}, log_dir / f"{name}.log"
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, process)
        except RuntimeError:
            process.kill()
            if attempt < 2 and "Connection in use" in process.output():
                continue
            raise
        return process, url
    raise AssertionError("unreachable")


def start_worker(env: dict[str, str], log_dir: Path, name: str = "worker") -> BotProcess:
    process = BotProcess([sys.executable, "-m", "bot.cli", "worker"], env, log_dir / f"{name}.log")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if "worker started" in process.output():
            return process
        if process.proc.poll() is not None:
            raise RuntimeError(f"worker exited: {process.output()}")
        time.sleep(0.05)
    process.kill()  # else it outlives the test (or benchmark) that gave up on it
    raise RuntimeError(f"worker did not start: {process.output()}")


def wait_healthy(url: str, process: BotProcess, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise RuntimeError(f"web exited with {process.proc.returncode}: {process.output()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2, verify=tls_context()).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"web did not become healthy: {process.output()}")


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
