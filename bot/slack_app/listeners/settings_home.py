"""The App Home's settings: the Edit and "Add a channel" buttons, the modal's channel picker, and
the modal's submission (bot.channel_settings).

A button's trigger_id is valid for 3 seconds, longer than the queue may take, so the modal is
opened here: the click is acknowledged at once and a Bolt lazy listener (a thread of this process)
checks the person is an admin (users.info when the cache is stale) and calls views.open; picking a
channel in the modal fills it with that channel's values (views.update, with the view's hash).
The submission is checked before the acknowledgement, like `/settings`: bad values come back under
their fields (response_action "errors") and nothing is saved; a good one is saved with its history
in one transaction, and the admin's Home tab is published again by a `settings_home` job.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from slack_bolt import App
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from bot.channel_settings import store
from bot.channel_settings.command_job import change_setting, choices_for
from bot.channel_settings.home_job import PUBLISH_HOME, HomePayload
from bot.channel_settings.models import WORKSPACE
from bot.channel_settings.names import NAMES, BadValue
from bot.channel_settings.views import (
    ADD_ACTION,
    CHANNEL_ACTION,
    EDIT_ACTION,
    MODAL_CALLBACK,
    PLACE_BLOCK,
    WORKSPACE_VALUE,
    ModalPlace,
    error_text,
    notice_modal,
    read_submission,
    settings_modal,
)
from bot.config import Settings
from bot.history import store as history
from bot.history.users import current_user
from bot.tools.registry import ToolRegistry

log = logging.getLogger(__name__)

ONLY_ADMINS = "Only workspace admins and owners can change settings. `/settings` in a channel shows them."
PICK_A_CHANNEL = "Pick a channel."


def _team(body: dict, context) -> str:
    return context.team_id or (body.get("team") or {}).get("id", "") or body.get("team_id", "")


def register(app: App, sessions: sessionmaker[Session], settings: Settings, registry: ToolRegistry) -> None:
    def modal_for(team_id: str, place: str | None, *, choose_channel: bool) -> dict:
        stored_place = WORKSPACE if place == WORKSPACE_VALUE else place
        values = {}
        if stored_place is not None:
            with sessions() as session:
                values = store.values(session, team_id, [stored_place])[stored_place]
        choices = choices_for(registry, settings, sessions)
        return settings_modal(
            place, values, tool_names=choices.tool_names, models=choices.models, choose_channel=choose_channel
        )

    def acknowledge(ack) -> None:
        ack()

    def open_settings_modal(body: dict, action: dict, client, context) -> None:
        team, user = _team(body, context), (body.get("user") or {}).get("id", "")
        person = current_user(client, sessions, team, user, datetime.now(UTC))
        if not (person and person.is_admin):
            view = notice_modal(ONLY_ADMINS)
        elif action.get("action_id") == ADD_ACTION:
            view = modal_for(team, None, choose_channel=True)
        else:
            view = modal_for(team, action.get("value") or WORKSPACE_VALUE, choose_channel=False)
        try:
            client.views_open(trigger_id=body.get("trigger_id", ""), view=view)
        except SlackApiError as error:  # e.g. expired_trigger_id: the person clicks again
            log.warning("settings modal_not_opened error=%s", error.response.get("error"))

    def show_channel(body: dict, action: dict, client, context) -> None:
        view = body.get("view") or {}
        channel = action.get("selected_conversation") or ""
        if not channel or not view.get("id"):
            return
        try:
            client.views_update(
                view_id=view["id"],
                hash=view.get("hash"),
                view=modal_for(_team(body, context), channel, choose_channel=True),
            )
        except SlackApiError as error:  # hash_conflict: a newer pick already updated it
            log.info("settings modal_not_updated error=%s", error.response.get("error"))

    def handle_submission(ack, body: dict, view: dict, context) -> None:
        errors = save_submission(sessions, settings, registry, team_id=_team(body, context), body=body, view=view)
        if errors:
            ack(response_action="errors", errors=errors)
        else:
            ack()

    for action_id in (EDIT_ACTION, ADD_ACTION):
        app.action(action_id)(ack=acknowledge, lazy=[open_settings_modal])
    app.action(CHANNEL_ACTION)(ack=acknowledge, lazy=[show_channel])
    app.view(MODAL_CALLBACK)(handle_submission)


class _Refused(Exception):
    """A submitted value was refused: nothing of the submission is saved."""


def save_submission(
    sessions: sessionmaker[Session], settings: Settings, registry: ToolRegistry, *, team_id: str, body: dict, view: dict
) -> dict[str, str]:
    """Check and save a submitted modal; {block id: error} when refused (nothing saved)."""
    submitted = read_submission(view)
    user = (body.get("user") or {}).get("id", "")
    first_block = next(iter(submitted.block_ids.values()), PLACE_BLOCK)
    if submitted.place is None:
        return {PLACE_BLOCK: PICK_A_CHANNEL}
    place = WORKSPACE if submitted.place == WORKSPACE_VALUE else submitted.place
    choices = choices_for(registry, settings, sessions)
    errors: dict[str, str] = {}
    changed: list[str] = []
    try:
        with sessions.begin() as session:
            # The modal was opened after users.info refreshed this person (the lazy listener above).
            person = history.get_user(session, team_id, user)
            if not (person and person.is_admin):
                return {first_block: ONLY_ADMINS}
            for name in NAMES:
                if name not in submitted.raw:
                    continue
                try:
                    change = change_setting(
                        session,
                        team_id=team_id,
                        place=place,
                        name=name,
                        raw=submitted.raw[name],
                        choices=choices,
                        user_id=user,
                    )
                except BadValue as exc:
                    errors[submitted.block_ids[name]] = error_text(str(exc))
                    continue
                if change is not None:
                    changed.append(name)
            if errors:
                raise _Refused()  # all or nothing, like the command: the transaction rolls back
            PUBLISH_HOME.enqueue(session, HomePayload(user=user), team_id=team_id, user_id=user, settings=settings)
    except _Refused:
        return errors
    log.info("settings saved from the home tab changed=%s workspace=%s", ",".join(changed), place == WORKSPACE)
    return {}


__all__ = ["ModalPlace", "register", "save_submission"]
