"""Settings, read once from the environment at the entry point and passed down.

Nothing else in the package reads the environment. Problems are collected, not raised one
by one, so an operator sees every missing or invalid variable in one go, each as one
plain sentence saying what to do.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.moderation_policy import PolicyError, parse_policy

DEFAULT_DATABASE_URL = "sqlite:///bot.sqlite3"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_MODEL = "claude-4-5-haiku"

# Heroku's cap on max_tokens ("max value: 4096 for Haiku models, 8192 for Sonnet models"); a
# model of another family gets the smaller one. Thinking needs a budget of at least 1024 tokens,
# below max_tokens (thinking tokens come out of max_tokens).
MODEL_MAX_OUTPUT_TOKENS = {"haiku": 4096, "sonnet": 8192}
DEFAULT_MODEL_MAX_OUTPUT_TOKENS = 4096
MIN_THINKING_BUDGET_TOKENS = 1024


def model_max_output_tokens(model: str) -> int:
    """The largest ``max_tokens`` Heroku accepts for ``model``."""
    for family, cap in MODEL_MAX_OUTPUT_TOKENS.items():
        if family in model.lower():
            return cap
    return DEFAULT_MODEL_MAX_OUTPUT_TOKENS


class ConfigError(Exception):
    """The configuration cannot be used; `problems` holds one sentence per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_client_id: str | None = None
    slack_client_secret: str | None = None
    slack_app_token: str | None = None
    slack_admin_user_token: str | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    inference_url: str | None = None
    inference_key: str | None = None
    inference_model_id: str = DEFAULT_MODEL
    inference_max_requests_per_minute: int = 200
    inference_max_tokens_per_minute: int = 800_000
    inference_rate_window_seconds: float = 60.0
    # Absorbs the delay between our admission and the server counting the request.
    inference_rate_margin_seconds: float = 0.25
    inference_timeout_seconds: float = 60.0
    # The largest request body sent: Heroku serves Claude from Amazon Bedrock, whose documented
    # payload limit is 20 MB (DESIGN-NOTES, "Request size"); Anthropic's own 32 MB does not apply.
    inference_max_request_bytes: int = 20_000_000
    # The largest max_tokens of any call (the model's own cap: 4096 for Haiku, 8192 for Sonnet).
    inference_max_output_tokens: int = 4096
    # max_tokens of one chat answer call (what the limiter reserves for it), and how many
    # follow-up calls continue an answer cut off at that length.
    answer_max_tokens: int = 1024
    answer_continuations: int = 3
    job_lease_seconds: float = 60.0
    job_max_attempts: int = 8
    worker_concurrency: int = 16
    daily_token_budget_per_user: int | None = None
    daily_token_budget_per_team: int | None = None
    system_prompt: str | None = None
    answer_thread_followups: bool = True
    answer_other_bots: bool = False
    max_tool_rounds: int = 5
    max_images_per_request: int = 10
    max_file_bytes: int = 20 * 1024 * 1024
    image_decode_concurrency: int = 2
    context_budget_tokens: int = 150_000
    # Documents (PDFs, text files): download cap, PDF page cap, characters of text kept per file.
    document_max_bytes: int = 10 * 1024 * 1024
    pdf_max_pages: int = 100
    document_max_chars: int = 100_000
    extended_thinking: bool = False
    thinking_budget_tokens: int = 2048  # part of inference_max_output_tokens, so below it
    show_reasoning: bool = False
    open_meteo_geocoding_url: str = "https://geocoding-api.open-meteo.com"
    open_meteo_forecast_url: str = "https://api.open-meteo.com"
    tool_modules: tuple[str, ...] = ()
    # Nobody waits long in silence: a queued note after this long, an apology after that.
    queued_notice_seconds: float = 5.0
    apology_after_seconds: float = 45.0
    moderation_channels: tuple[str, ...] = ()
    moderation_report_channel: str | None = None
    # Categories "name: description; …" (bot.moderation.policy); None: the built-in list.
    moderation_policy: str | None = None
    moderation_allow_reaction: str | None = None  # emoji name added to allowed images' messages
    port: int = 3000
    log_level: str = "INFO"
    # Stored messages, images, idempotency keys and finished jobs older than this are purged; 0 keeps them.
    retention_days: int = 30
    web_concurrency: int = 2  # gunicorn processes of `bot web` (WEB_CONCURRENCY, read by gunicorn too)
    # The Postgres plan's connection limit, for `bot check`'s connection budget. Heroku
    # essential-0 (and essential-1) allow 20 connections.
    database_connection_limit: int = 20
    # How long a state-changing tool call the model made waits for the asker's approval.
    approval_timeout_seconds: float = 24 * 3600.0

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def oauth_enabled(self) -> bool:
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def has_slack(self) -> bool:
        receives = self.slack_signing_secret or self.slack_app_token
        return bool(receives and (self.slack_bot_token or self.oauth_enabled))

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)

    @property
    def has_inference(self) -> bool:
        return bool(self.inference_url and self.inference_key)

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)


INFERENCE_HINT = (
    "attach the model with `heroku ai:models:create -a APP claude-4-5-haiku --as INFERENCE`, "
    "or export INFERENCE_URL and INFERENCE_KEY from `heroku config -a APP` for local use"
)


def missing_for(settings: Settings, *needs: str) -> list[str]:
    """Sentences for what a command needs but the settings lack. `needs`: "slack", "inference"."""
    problems = []
    if "slack" in needs:
        # Socket Mode receives events over a websocket: no signed requests to verify.
        if not settings.slack_signing_secret and not settings.slack_app_token:
            problems.append(
                "SLACK_SIGNING_SECRET is not set: copy it from your Slack app's Basic Information page "
                "(create the app from `bot manifest`)."
            )
        if not (settings.slack_bot_token or settings.oauth_enabled):
            problems.append(
                "SLACK_BOT_TOKEN is not set: install the app to your workspace and copy the Bot User "
                "OAuth Token (xoxb-…), or set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET for OAuth."
            )
    if "inference" in needs:
        if not settings.inference_url:
            problems.append(f"INFERENCE_URL is not set: {INFERENCE_HINT}.")
        if not settings.inference_key:
            problems.append(f"INFERENCE_KEY is not set: {INFERENCE_HINT}.")
    return problems


def require(settings: Settings, *needs: str) -> None:
    problems = missing_for(settings, *needs)
    if problems:
        raise ConfigError(problems)


def normalize_database_url(raw: str) -> str:
    """Accept Heroku's postgres:// and plain postgresql://; use the psycopg 3 driver."""
    url = raw.strip()
    scheme, sep, rest = url.partition("://")
    if not sep or not rest:
        raise ValueError("not a URL")
    scheme = scheme.lower()
    if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        parts = urlsplit("postgresql://" + rest)
        if not parts.hostname and "host=" not in (parts.query or ""):
            raise ValueError("no host")
        return "postgresql+psycopg://" + rest
    if scheme == "sqlite":
        return "sqlite://" + rest
    raise ValueError(f"unsupported scheme {scheme!r}")


def output_limit_problems(values: Mapping[str, object]) -> list[str]:
    """One sentence per way INFERENCE_MAX_OUTPUT_TOKENS and INFERENCE_THINKING_BUDGET_TOKENS
    (as read so far into ``values``) break the model's rules."""
    defaults = Settings()
    model = str(values.get("inference_model_id") or defaults.inference_model_id)
    max_output = int(values.get("inference_max_output_tokens") or defaults.inference_max_output_tokens)
    budget = int(values.get("thinking_budget_tokens") or defaults.thinking_budget_tokens)
    cap = model_max_output_tokens(model)
    problems = []
    if max_output > cap:
        problems.append(
            f"INFERENCE_MAX_OUTPUT_TOKENS is {max_output}, above the {cap} Heroku allows for {model}: "
            f"set it to {cap} or less."
        )
    if budget >= max_output:
        if max_output <= MIN_THINKING_BUDGET_TOKENS:
            fix = (
                f"raise INFERENCE_MAX_OUTPUT_TOKENS above {MIN_THINKING_BUDGET_TOKENS} (the smallest budget), "
                "since anyone can ask the bot to think hard"
            )
        else:
            example = max(MIN_THINKING_BUDGET_TOKENS, min(max_output, cap) // 2)
            fix = f"lower the budget (at least {MIN_THINKING_BUDGET_TOKENS}, e.g. {example})"
        problems.append(
            f"INFERENCE_THINKING_BUDGET_TOKENS is {budget}, not below INFERENCE_MAX_OUTPUT_TOKENS ({max_output}): "
            f"thinking tokens come out of the output limit; {fix}."
        )
    return problems


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the environment; raise ConfigError listing every problem."""
    env = os.environ if env is None else env
    problems: list[str] = []
    values: dict = {}

    def text(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    def number(name: str, kind, minimum, attr: str | None = None):
        raw = text(name)
        if raw is None:
            return
        try:
            value = kind(raw)
        except ValueError:
            problems.append(f"{name} must be a number, got {raw!r}.")
            return
        if value < minimum:
            problems.append(f"{name} must be at least {minimum}, got {raw!r}.")
            return
        values[attr or name.lower()] = value

    raw_db = text("DATABASE_URL")
    if raw_db:
        try:
            values["database_url"] = normalize_database_url(raw_db)
        except ValueError as exc:
            problems.append(
                f"DATABASE_URL is malformed ({exc}): use postgres://USER:PASSWORD@HOST:PORT/DB "
                "(Heroku sets it when you add heroku-postgresql) or sqlite:///path/to/file.sqlite3."
            )

    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_CLIENT_ID",
        "SLACK_CLIENT_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_ADMIN_USER_TOKEN",
        "INFERENCE_KEY",
        "MODERATION_REPORT_CHANNEL",
    ):
        if text(name):
            values[name.lower()] = text(name)

    if text("SLACK_BOT_TOKEN") and not text("SLACK_BOT_TOKEN").startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN must be a bot token starting with xoxb-.")
    if text("SLACK_APP_TOKEN") and not text("SLACK_APP_TOKEN").startswith("xapp-"):
        problems.append(
            "SLACK_APP_TOKEN must be an app-level token starting with xapp- (Basic Information → "
            "App-Level Tokens, scope connections:write)."
        )
    if bool(text("SLACK_CLIENT_ID")) != bool(text("SLACK_CLIENT_SECRET")):
        problems.append("SLACK_CLIENT_ID and SLACK_CLIENT_SECRET go together: set both for OAuth, or neither.")

    for name, key in (("SLACK_API_URL", "slack_api_url"), ("INFERENCE_URL", "inference_url")):
        raw = text(name)
        if raw is None:
            continue
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"{name} must be an http(s) URL, got {raw!r}.")
            continue
        if key == "slack_api_url" and not raw.endswith("/"):
            raw += "/"
        values[key] = raw.rstrip("/") if key == "inference_url" else raw

    if text("INFERENCE_MODEL_ID"):
        values["inference_model_id"] = text("INFERENCE_MODEL_ID")

    number("INFERENCE_MAX_REQUESTS_PER_MINUTE", int, 1)
    number("INFERENCE_MAX_TOKENS_PER_MINUTE", int, 1)
    number("INFERENCE_RATE_WINDOW_SECONDS", float, 0.1)
    number("INFERENCE_RATE_MARGIN_SECONDS", float, 0.0)
    number("INFERENCE_TIMEOUT_SECONDS", float, 1.0)
    number("INFERENCE_MAX_OUTPUT_TOKENS", int, 16)
    number("INFERENCE_MAX_REQUEST_BYTES", int, 1_000_000)
    number("JOB_LEASE_SECONDS", float, 1.0)
    number("JOB_MAX_ATTEMPTS", int, 1)
    number("WORKER_CONCURRENCY", int, 1)
    number("PORT", int, 1)
    number("DAILY_TOKEN_BUDGET_PER_USER", int, 1)
    number("DAILY_TOKEN_BUDGET_PER_TEAM", int, 1)
    number("RETENTION_DAYS", int, 0)
    number("WEB_CONCURRENCY", int, 1)
    number("DATABASE_CONNECTION_LIMIT", int, 1)
    number("BOT_APPROVAL_TIMEOUT_SECONDS", float, 1.0, "approval_timeout_seconds")
    if text("BOT_SYSTEM_PROMPT"):
        values["system_prompt"] = env["BOT_SYSTEM_PROMPT"]

    number("BOT_QUEUED_NOTICE_SECONDS", float, 0.0, "queued_notice_seconds")
    number("BOT_APOLOGY_AFTER_SECONDS", float, 0.0, "apology_after_seconds")
    number("BOT_MAX_TOOL_ROUNDS", int, 1, "max_tool_rounds")
    number("BOT_ANSWER_MAX_TOKENS", int, 16, "answer_max_tokens")
    number("BOT_ANSWER_CONTINUATIONS", int, 0, "answer_continuations")
    number("BOT_MAX_IMAGES_PER_REQUEST", int, 0, "max_images_per_request")
    number("BOT_MAX_FILE_BYTES", int, 1024, "max_file_bytes")
    number("BOT_IMAGE_DECODE_CONCURRENCY", int, 1, "image_decode_concurrency")
    number("BOT_CONTEXT_BUDGET_TOKENS", int, 1000, "context_budget_tokens")
    number("BOT_DOCUMENT_MAX_BYTES", int, 1024, "document_max_bytes")
    number("BOT_PDF_MAX_PAGES", int, 1, "pdf_max_pages")
    number("BOT_DOCUMENT_MAX_CHARS", int, 100, "document_max_chars")
    number("INFERENCE_THINKING_BUDGET_TOKENS", int, MIN_THINKING_BUDGET_TOKENS, "thinking_budget_tokens")
    problems.extend(output_limit_problems(values))
    for name, attr in (
        ("BOT_ANSWER_THREAD_FOLLOWUPS", "answer_thread_followups"),
        ("BOT_ANSWER_OTHER_BOTS", "answer_other_bots"),
        ("INFERENCE_EXTENDED_THINKING", "extended_thinking"),
        ("BOT_SHOW_REASONING", "show_reasoning"),
    ):
        raw = text(name)
        if raw is None:
            continue
        if raw.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            problems.append(f"{name} must be true or false, got {raw!r}.")
            continue
        values[attr] = raw.lower() in ("true", "1", "yes", "on")
    for name, attr in (
        ("OPEN_METEO_GEOCODING_URL", "open_meteo_geocoding_url"),
        ("OPEN_METEO_FORECAST_URL", "open_meteo_forecast_url"),
    ):
        if text(name):
            values[attr] = text(name).rstrip("/")
    if text("BOT_TOOL_MODULES"):
        values["tool_modules"] = tuple(m.strip() for m in text("BOT_TOOL_MODULES").split(",") if m.strip())

    channels = text("MODERATION_CHANNELS")
    if channels:
        values["moderation_channels"] = tuple(c.strip() for c in channels.split(",") if c.strip())
    if text("MODERATION_POLICY"):
        try:
            parse_policy(text("MODERATION_POLICY"))
            values["moderation_policy"] = text("MODERATION_POLICY")
        except PolicyError as exc:
            problems.append(str(exc))
    if text("MODERATION_ALLOW_REACTION"):
        values["moderation_allow_reaction"] = text("MODERATION_ALLOW_REACTION").strip(":")
    level = (text("LOG_LEVEL") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}.")
    values["log_level"] = level

    if problems:
        raise ConfigError(problems)
    return Settings(**values)
