"""The App Home and the settings modal as Block Kit views, and reading a submitted modal (pure).

Limits from Slack's view reference: a view holds at most 100 blocks; a modal's title, submit and
close texts at most 24 characters; private_metadata at most 3000; a section's text at most 3000;
a plain_text_input at most 3000 characters; a button's text 75; an option's text 75, its value 150.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.channel_settings.names import (
    ANSWER,
    ANSWER_VALUES,
    BUDGET,
    DEFAULT,
    INSTRUCTIONS,
    MAX_INSTRUCTIONS_CHARS,
    MODEL,
    NAMES,
    TOOLS,
    shown,
)
from bot.channel_settings.resolve import Stored

MODAL_CALLBACK = "settings_modal"
EDIT_ACTION = "settings_edit"  # the App Home's Edit buttons; value: a channel id, or "" for the workspace
ADD_ACTION = "settings_add"  # the App Home's "Add a channel" button
CHANNEL_ACTION = "settings_channel"  # the modal's channel picker (dispatches, then views.update)
PLACE_BLOCK = "settings_place"
MAX_HOME_CHANNELS = 80  # room for the other blocks within the 100 a view holds
SUMMARY_INSTRUCTIONS_CHARS = 150
MAX_ERROR_CHARS = 300
WORKSPACE_VALUE = "workspace"  # a button's value must not be empty


def _text(text: str, kind: str = "mrkdwn") -> dict:
    return {"type": kind, "text": text}


def _plain(text: str) -> dict:
    return {"type": "plain_text", "text": text}


def summary(values: Mapping[str, Stored]) -> str:
    """One line per value set in a place (the rest is inherited)."""
    lines = []
    for name in NAMES:
        if name not in values:
            continue
        value = values[name].value
        if name == INSTRUCTIONS:
            one_line = " ".join(value.split())
            if len(one_line) > SUMMARY_INSTRUCTIONS_CHARS:
                one_line = one_line[: SUMMARY_INSTRUCTIONS_CHARS - 1] + "…"
            text = f"“{one_line}”"
        else:
            text = f"`{shown(name, value)}`"
        lines.append(f"• {name}: {text}")
    return "\n".join(lines) or "_nothing set: the app's defaults apply_"


def home_view(
    *, is_admin: bool, workspace: Mapping[str, Stored], channels: Mapping[str, Mapping[str, Stored]], more: int = 0
) -> dict:
    """The Home tab: admins get Edit buttons and "Add a channel"; everyone else reads what applies."""
    blocks: list[dict] = [{"type": "header", "text": _plain("Settings")}]
    workspace_block = {
        "type": "section",
        "block_id": "settings_workspace",
        "text": _text(
            "*Workspace defaults* (every channel without its own, and direct messages)\n" + summary(workspace)
        ),
    }
    if is_admin:
        workspace_block["accessory"] = _button("Edit", EDIT_ACTION, WORKSPACE_VALUE)
    blocks += [workspace_block, {"type": "divider"}]
    if channels:
        blocks.append({"type": "section", "text": _text("*Channels with settings of their own*")})
    for channel_id in list(channels)[:MAX_HOME_CHANNELS]:
        block = {
            "type": "section",
            "block_id": f"settings_channel_{channel_id}",
            "text": _text(f"<#{channel_id}>\n{summary(channels[channel_id])}"[:3000]),
        }
        if is_admin:
            block["accessory"] = _button("Edit", EDIT_ACTION, channel_id)
        blocks.append(block)
    if more:
        blocks.append({"type": "context", "elements": [_text(f"…and {more} more: `/settings` in a channel shows it.")]})
    if is_admin:
        blocks.append({"type": "actions", "elements": [_button("Add a channel", ADD_ACTION, "add")]})
        note = "Changes apply to the next answer within seconds. `/settings` in a channel shows the same."
    else:
        note = (
            "Only workspace admins and owners can change settings. `/settings` in a channel shows what applies there."
        )
    blocks.append({"type": "context", "elements": [_text(note)]})
    return {"type": "home", "blocks": blocks}


def _button(text: str, action_id: str, value: str) -> dict:
    return {"type": "button", "text": _plain(text), "action_id": action_id, "value": value}


def _option(text: str, value: str) -> dict:
    return {"text": _plain(text[:75]), "value": value[:150]}


def _block_id(name: str, place: str | None) -> str:
    # Per place: Slack keeps what was typed in a block with the same id across views.update.
    return f"setting_{name}_{place or WORKSPACE_VALUE}"


@dataclass(frozen=True)
class ModalPlace:
    """Which place a modal edits: a channel id, WORKSPACE_VALUE, or None (a channel not chosen yet)."""

    place: str | None

    def metadata(self) -> str:
        return json.dumps({"place": self.place})

    @classmethod
    def from_metadata(cls, text: str) -> ModalPlace:
        try:
            data = json.loads(text or "{}")
        except ValueError:
            return cls(None)
        place = data.get("place") if isinstance(data, dict) else None
        return cls(place if isinstance(place, str) and place else None)


def settings_modal(
    place: str | None,
    values: Mapping[str, Stored],
    *,
    tool_names: Sequence[str],
    models: Sequence[str],
    choose_channel: bool = False,
) -> dict:
    """The modal editing ``place`` (a channel id or WORKSPACE_VALUE; None: pick a channel first)."""
    blocks: list[dict] = []
    if choose_channel or place is None:
        select = {"type": "conversations_select", "action_id": CHANNEL_ACTION, "placeholder": _plain("Pick a channel")}
        select["filter"] = {"include": ["public", "private"], "exclude_bot_users": True}
        if place and place != WORKSPACE_VALUE:
            select["initial_conversation"] = place
        blocks.append(
            {
                "type": "input",
                "block_id": PLACE_BLOCK,
                "dispatch_action": True,
                "label": _plain("Channel"),
                "element": select,
            }
        )
    else:
        title = "*Workspace defaults*" if place == WORKSPACE_VALUE else f"*Settings for <#{place}>*"
        blocks.append({"type": "section", "text": _text(title)})
    blocks.append(
        {
            "type": "context",
            "elements": [
                _text("Leave a field empty (or choose _default_) to inherit the workspace's or the app's value.")
            ],
        }
    )
    current = {name: values[name].value for name in values}
    instructions = {
        "type": "plain_text_input",
        "action_id": INSTRUCTIONS,
        "multiline": True,
        "max_length": MAX_INSTRUCTIONS_CHARS,
    }
    if current.get(INSTRUCTIONS):
        instructions["initial_value"] = current[INSTRUCTIONS]
    tools = {"type": "plain_text_input", "action_id": TOOLS, "placeholder": _plain("all, none, or calculate, …")}
    if current.get(TOOLS):
        tools["initial_value"] = current[TOOLS]
    budget = {"type": "plain_text_input", "action_id": BUDGET, "placeholder": _plain("e.g. 200k, or none")}
    if current.get(BUDGET):
        budget["initial_value"] = current[BUDGET]
    answer_options = [_option("default", DEFAULT)] + [_option(value, value) for value in ANSWER_VALUES]
    model_options = [_option("default", DEFAULT)] + [_option(model, model) for model in models[:99]]
    names = ", ".join(tool_names)
    blocks += [
        _input(INSTRUCTIONS, place, "Instructions", instructions, "Added to the system prompt of every answer here."),
        _input(TOOLS, place, "Tools", tools, f"Names separated by commas, from: {names}"[:150]),
        _input(ANSWER, place, "Answer", _select(ANSWER, answer_options, current.get(ANSWER)), None),
        _input(BUDGET, place, "Daily token budget", budget, "Tokens per UTC day."),
        _input(MODEL, place, "Model", _select(MODEL, model_options, current.get(MODEL)), None),
    ]
    return {
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "title": _plain("Settings"),
        "submit": _plain("Save"),
        "close": _plain("Cancel"),
        "private_metadata": ModalPlace(place).metadata(),
        "blocks": blocks,
    }


def notice_modal(text: str) -> dict:
    return {"type": "modal", "title": _plain("Settings"), "close": _plain("Close"), "blocks": [_section(text)]}


def _section(text: str) -> dict:
    return {"type": "section", "text": _text(text)}


def _select(name: str, options: list[dict], current: str | None) -> dict:
    element = {"type": "static_select", "action_id": name, "options": options}
    chosen = next((option for option in options if option["value"] == (current or DEFAULT)), options[0])
    element["initial_option"] = chosen
    return element


def _input(name: str, place: str | None, label: str, element: dict, hint: str | None) -> dict:
    block = {"type": "input", "block_id": _block_id(name, place), "optional": True, "label": _plain(label)}
    block["element"] = element
    if hint:
        block["hint"] = _plain(hint)
    return block


@dataclass(frozen=True)
class Submitted:
    place: str | None  # a channel id, WORKSPACE_VALUE, or None when no channel was chosen
    raw: dict[str, str]  # setting → the value as typed or chosen ("default" when left empty)
    block_ids: dict[str, str]  # setting → its block id (where Slack shows an error)


def read_submission(view: Mapping) -> Submitted:
    """What a submitted settings modal asks for (anything malformed counts as left empty)."""
    state = ((view.get("state") or {}).get("values") or {}) if isinstance(view, Mapping) else {}
    place = ModalPlace.from_metadata(str(view.get("private_metadata") or "")).place
    chosen = (state.get(PLACE_BLOCK) or {}).get(CHANNEL_ACTION) or {}
    if isinstance(chosen, Mapping) and isinstance(chosen.get("selected_conversation"), str):
        place = chosen["selected_conversation"] or place
    raw, block_ids = {}, {}
    for block_id, actions in state.items():
        if not isinstance(actions, Mapping):
            continue
        for action_id, entry in actions.items():
            if action_id not in NAMES or not isinstance(entry, Mapping) or not block_id.startswith("setting_"):
                continue
            value = entry.get("value")
            selected = entry.get("selected_option")
            if isinstance(selected, Mapping):
                value = selected.get("value")
            text = value.strip() if isinstance(value, str) else ""
            raw[action_id] = text or DEFAULT
            block_ids[action_id] = block_id
    return Submitted(place, raw, block_ids)


def error_text(message: str) -> str:
    """A BadValue's sentence for under a field: the problem and what is allowed, without the usage line."""
    lines = [line for line in message.splitlines() if line and not line.startswith("Usage:")]
    return " ".join(lines)[:MAX_ERROR_CHARS]
