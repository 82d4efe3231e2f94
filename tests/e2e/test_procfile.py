"""The Procfile's processes, run as Heroku would: release, then web (gunicorn) and worker."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.support.processes import REPO, BotProcess, bot_env, free_port, wait_for, wait_healthy


def procfile() -> dict[str, str]:
    lines = (REPO / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_release_then_web_and_worker_start_cleanly_on_postgres(postgres_admin_url, tmp_path):
    from tests.conftest import _admin_execute, _with_database

    name = "bot_procfile_test"
    _admin_execute(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    # Heroku's DATABASE_URL form.
    database_url = _with_database(postgres_admin_url, name).replace("postgresql+psycopg://", "postgres://")
    port = free_port()
    env = bot_env(database_url, PORT=str(port), INFERENCE_URL="http://127.0.0.1:9", WEB_CONCURRENCY="1")
    processes = procfile()
    assert set(processes) == {"release", "web", "worker"}

    release = subprocess.run(processes["release"], shell=True, env=env, cwd=REPO, capture_output=True, text=True)
    assert release.returncode == 0, release.stdout + release.stderr
    again = subprocess.run(processes["release"], shell=True, env=env, cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0, "migrate must be idempotent"

    web = BotProcess([processes["web"]], env, tmp_path / "web.log", shell=True)
    worker = BotProcess([processes["worker"]], env, tmp_path / "worker.log", shell=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", web)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert health["database"] == "ok"
        assert wait_for(lambda: "worker started" in worker.output(), timeout=20), worker.output()
        assert "gthread" in web.output() or web.proc.poll() is None
    finally:
        web_code = web.stop()
        worker_code = worker.stop()
    assert worker_code == 0, worker.output()
    assert web_code == 0, web.output()
    for output in (web.output(), worker.output()):
        assert "Traceback" not in output
    _admin_execute(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_missing_variable_gives_one_sentence_and_no_traceback(tmp_path):
    env = bot_env(f"sqlite:///{tmp_path}/bot.sqlite3")
    env.pop("INFERENCE_KEY")
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "worker"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2  # INFERENCE_URL and INFERENCE_KEY
    assert all("heroku ai:models:create" in line for line in lines)
    assert "Traceback" not in result.stderr + result.stdout


def test_a_malformed_database_url_is_explained(tmp_path):
    env = bot_env("mysql:/nope")
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "migrate"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.startswith("DATABASE_URL is malformed")
    assert "Traceback" not in result.stderr


def test_a_database_that_is_down_is_explained(tmp_path):
    env = bot_env("postgres://postgres@127.0.0.1:1/none")
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "migrate"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 3
    assert "is not reachable" in result.stderr and "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_manifest_is_valid_json_with_the_required_sections():
    import json

    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "manifest", "--url", "https://example.herokuapp.com"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert {"display_information", "features", "oauth_config", "settings"} <= manifest.keys()
