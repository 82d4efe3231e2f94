"""Which report channel and admin user token a workspace's moderation uses (pure).

In single-workspace mode the environment (MODERATION_REPORT_CHANNEL, SLACK_ADMIN_USER_TOKEN)
is the default and `/moderation report|token` overrides it. In OAuth mode only what the
workspace itself stored counts: an environment value names one workspace's channel or token,
and using it for another would send that workspace's reports (file names, posters, reasons)
to a channel id of a different workspace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CHANNEL = re.compile(r"^<#([CG][A-Z0-9]{2,})(?:\|[^>]*)?>$|^([CG][A-Z0-9]{2,})$")
CLEAR_WORDS = frozenset({"none", "off", "clear", "-"})


@dataclass(frozen=True)
class StoredSettings:
    report_channel: str | None = None
    admin_user_token: str | None = None


@dataclass(frozen=True)
class EffectiveSettings:
    report_channel: str | None
    admin_user_token: str | None


def effective(
    stored: StoredSettings | None, *, env_report_channel: str | None, env_admin_token: str | None, oauth: bool
) -> EffectiveSettings:
    stored = stored or StoredSettings()
    if oauth:
        return EffectiveSettings(stored.report_channel, stored.admin_user_token)
    return EffectiveSettings(
        stored.report_channel or env_report_channel or None, stored.admin_user_token or env_admin_token or None
    )


def parse_channel(text: str) -> str | None:
    """`C0123` or Slack's `<#C0123|name>` → the id; None when it is neither."""
    match = _CHANNEL.match(text.strip())
    return (match.group(1) or match.group(2)) if match else None
