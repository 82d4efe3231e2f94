"""What `/settings …` asks for, and the text it answers (pure).

/settings                              this channel's settings, where each comes from, the last change
/settings <setting> <value>            set it in this channel (workspace admins)
/settings workspace                    the workspace defaults
/settings workspace <setting> <value>  set a workspace default (workspace admins)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.channel_settings.names import INSTRUCTIONS, NAMES, SETTING_USAGE, USAGE, BadValue, shown
from bot.channel_settings.resolve import APP_DEFAULT, CHANNEL, Resolved

SHOW, SET, HELP = "show", "set", "help"
INSTRUCTIONS_SHOWN_CHARS = 300
NOT_ADMIN = (
    "Only workspace admins and owners can change settings; nothing was changed. Anyone can look with `/settings`."
)
DM_HAS_NO_CHANNEL_SETTINGS = (
    "Direct messages follow the workspace defaults: change them with `/settings workspace <setting> <value>`."
)
HELP_TEXT = (
    f"Usage: {USAGE}\n"
    + "\n".join(f"• {line}" for line in SETTING_USAGE.values())
    + "\nAdd `workspace` after `/settings` to see or set the workspace defaults."
)


@dataclass(frozen=True)
class Request:
    kind: str  # SHOW, SET or HELP
    workspace: bool = False
    name: str = ""
    raw: str = ""  # the value as typed


def parse_command(text: str) -> Request:
    """Read the command's text. Raises BadValue (with the usage line) for an unknown setting."""
    rest = (text or "").strip()
    workspace = False
    first, _, after = rest.partition(" ")
    if first.lower() == "workspace":
        workspace, rest = True, after.strip()
        first, _, after = rest.partition(" ")
    if not rest:
        return Request(SHOW, workspace)
    name = first.lower()
    if name in ("help", "usage", "?"):
        return Request(HELP, workspace)
    if name not in NAMES:
        raise BadValue(f"There is no setting {first!r}.\n{HELP_TEXT}")
    value = after.strip() if name == INSTRUCTIONS else " ".join(after.split())
    if not value:
        raise BadValue(f"Give a value for {name}.\nUsage: {SETTING_USAGE[name]}")
    return Request(SET, workspace, name, value)


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _value(setting: Resolved) -> str:
    text = shown(setting.name, setting.value)
    if setting.name == INSTRUCTIONS and setting.value is not None:
        one_line = " ".join(setting.value.split())
        if len(one_line) > INSTRUCTIONS_SHOWN_CHARS:
            one_line = one_line[: INSTRUCTIONS_SHOWN_CHARS - 1] + "…"
        return f"“{one_line}”"
    return f"`{text}`"


def source_label(setting: Resolved, *, workspace_view: bool) -> str:
    if setting.source == APP_DEFAULT:
        return "app default"
    label = "this channel" if setting.source == CHANNEL else "workspace" if not workspace_view else "set here"
    stored = setting.stored
    return f"{label}, by <@{stored.changed_by}> on {when(stored.changed_at)}" if stored else label


def describe_change(change) -> str:
    """``change``: a store.Change."""
    old = shown(change.name, change.old_value) if change.old_value is not None else "(inherited)"
    new = shown(change.name, change.new_value) if change.new_value is not None else "(inherited)"
    if change.name == INSTRUCTIONS:
        old = "(inherited)" if change.old_value is None else "text"
        new = "(inherited)" if change.new_value is None else "new text"
    return f"<@{change.changed_by}> changed *{change.name}* from `{old}` to `{new}` on {when(change.changed_at)}"


def render_settings(resolved: Mapping[str, Resolved], *, title: str, last_change=None, workspace_view: bool) -> str:
    """The answer to `/settings` (or `/settings workspace`)."""
    lines = [f"*{title}*"]
    for name in NAMES:
        setting = resolved[name]
        lines.append(f"• *{name}*: {_value(setting)} — _{source_label(setting, workspace_view=workspace_view)}_")
    lines.append(f"Last change: {describe_change(last_change)}." if last_change else "Last change: none yet.")
    where = "/settings workspace <setting> <value>" if workspace_view else "/settings <setting> <value>"
    lines.append(f"_Workspace admins change them with `{where}`; `/settings help` lists the values._")
    return "\n".join(lines)


def render_done(change, *, place: str) -> str:
    if change is None:
        return f"Nothing changed: {place} already had that value."
    return f"Done: {describe_change(change)} for {place}."
