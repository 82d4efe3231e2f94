"""Model attachments found in the environment, their published limits, and routes by job kind (pure).

Heroku sets ``ALIAS_URL``, ``ALIAS_KEY`` and ``ALIAS_MODEL_ID`` for every model resource attached
``--as ALIAS`` (``heroku ai:models:attach MODEL_RESOURCE -a APP --as INFERENCE_2``). Every alias
starting with ``INFERENCE`` is one attachment; each has its own rate limits
(``ALIAS_MAX_REQUESTS_PER_MINUTE``, ``ALIAS_MAX_TOKENS_PER_MINUTE``, ``ALIAS_RATE_WINDOW_SECONDS``),
by default the model's published ones. Attachments of one model form one pool
(:mod:`bot.limits.admission`); jobs are routed to a model by kind (:data:`ROUTES`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAIN_ALIAS = "INFERENCE"
DEFAULT_MODEL = "claude-4-5-haiku"

# Requests and tokens per minute, from Heroku's page for each model ("Rate Limits: Maximum requests
# per minute / Maximum tokens per minute", devcenter.heroku.com/articles/heroku-inference-api-model-<id>,
# and the Managed Inference rate-limits table for the models without a page of their own).
PUBLISHED_LIMITS: dict[str, tuple[int, int]] = {
    "claude-4-5-haiku": (200, 800_000),
    "claude-4-5-sonnet": (150, 800_000),
    "claude-sonnet-4-6": (150, 800_000),
    "claude-4-sonnet": (150, 800_000),
    "claude-3-7-sonnet": (150, 800_000),
    "claude-3-5-sonnet-latest": (150, 800_000),
    "claude-3-5-haiku": (200, 800_000),
    "claude-3-haiku": (250, 800_000),
    "openai-gpt-oss-120b": (200, 800_000),
    "nova-pro": (150, 800_000),
    "nova-lite": (150, 800_000),
}
# A model Heroku lists no limits for: the smallest published ones.
UNLISTED_LIMITS = (150, 800_000)
DEFAULT_WINDOW_SECONDS = 60.0  # "per minute ... calculated with a sliding window"

# Job kinds that may run on a model of their own, and the variable that names it.
ROUTES = {
    "moderation": "BOT_MODERATION_MODEL",
    "summary": "BOT_SUMMARY_MODEL",
    "thinking": "BOT_THINKING_MODEL",
}

_ALIAS_URL = re.compile(r"(INFERENCE[A-Z0-9_]*)_URL")


def published_limits(model_id: str) -> tuple[int, int]:
    """(requests, tokens) per minute Heroku publishes for ``model_id``."""
    return PUBLISHED_LIMITS.get(model_id.strip().lower(), UNLISTED_LIMITS)


@dataclass(frozen=True)
class Attachment:
    """One attached model resource: where to call it, with which key, and its limits."""

    alias: str  # INFERENCE, INFERENCE_2, ...
    url: str
    key: str = field(repr=False)
    model_id: str = DEFAULT_MODEL
    max_requests: int = 200
    max_tokens: int = 800_000
    window_seconds: float = DEFAULT_WINDOW_SECONDS

    @property
    def name(self) -> str:
        """The limiter's name for it (the main attachment keeps the historical "inference")."""
        return self.alias.lower()


def aliases_in(env: Mapping[str, str]) -> list[str]:
    """Every alias with an ``ALIAS_URL`` starting with INFERENCE, the main one first, then sorted."""
    found = {m.group(1) for name in env if (m := _ALIAS_URL.fullmatch(name)) and env[name].strip()}
    return sorted(found, key=lambda alias: (alias != MAIN_ALIAS, alias))


def discover(env: Mapping[str, str]) -> tuple[list[Attachment], list[str]]:
    """The extra attachments (every alias but INFERENCE, which the settings read themselves) and
    one sentence per problem."""
    attachments: list[Attachment] = []
    problems: list[str] = []
    for alias in aliases_in(env):
        if alias == MAIN_ALIAS:
            continue
        url = env[f"{alias}_URL"].strip()
        key = env.get(f"{alias}_KEY", "").strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"{alias}_URL must be an http(s) URL, got {url!r}.")
            continue
        if not key:
            problems.append(f"{alias}_URL is set but {alias}_KEY is not: copy both from `heroku config -a APP`.")
            continue
        model = env.get(f"{alias}_MODEL_ID", "").strip() or DEFAULT_MODEL
        requests, tokens = published_limits(model)
        limits = {"max_requests": requests, "max_tokens": tokens, "window_seconds": DEFAULT_WINDOW_SECONDS}
        for suffix, attr, kind, minimum in (
            ("MAX_REQUESTS_PER_MINUTE", "max_requests", int, 1),
            ("MAX_TOKENS_PER_MINUTE", "max_tokens", int, 1),
            ("RATE_WINDOW_SECONDS", "window_seconds", float, 0.1),
        ):
            raw = env.get(f"{alias}_{suffix}", "").strip()
            if not raw:
                continue
            try:
                value = kind(raw)
            except ValueError:
                problems.append(f"{alias}_{suffix} must be a number, got {raw!r}.")
                continue
            if value < minimum:
                problems.append(f"{alias}_{suffix} must be at least {minimum}, got {raw!r}.")
                continue
            limits[attr] = value
        attachments.append(Attachment(alias, url.rstrip("/"), key, model, **limits))
    return attachments, problems


def route_problem(variable: str, model: str, attached: tuple[str, ...]) -> str | None:
    """One sentence when ``variable`` routes jobs to a model no attachment serves."""
    if model in attached:
        return None
    return (
        f"{variable} is {model!r}, but no attached model serves it (attached: {', '.join(attached)}): "
        f"attach it with `heroku ai:models:attach MODEL_RESOURCE -a APP --as INFERENCE_2`, or unset {variable}."
    )


__all__ = [
    "DEFAULT_MODEL",
    "MAIN_ALIAS",
    "PUBLISHED_LIMITS",
    "ROUTES",
    "Attachment",
    "aliases_in",
    "discover",
    "published_limits",
    "route_problem",
]
