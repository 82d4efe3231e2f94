"""The web side of moderation: inside the transaction that records a message event, claim
each new image file once and enqueue a background `moderate` job for it. Database only."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from bot.config import Settings
from bot.conversation.engagement import Inbound
from bot.idempotency.store import claim_once
from bot.moderation import store
from bot.moderation.job import MODERATE, ModeratePayload
from bot.moderation.trigger import file_key, files_to_moderate, is_watched

log = logging.getLogger(__name__)


def enqueue_moderation(session: Session, settings: Settings, *, team_id: str, inbound: Inbound) -> list[int]:
    """Job ids enqueued for the images of `inbound` (none when the channel is not watched)."""
    files = files_to_moderate(inbound)
    if not files:
        return []  # most messages: no query at all
    switch = store.channel_switch(session, team_id, inbound.channel)
    if not is_watched(inbound.channel, settings.moderation_channels, switch):
        return []
    job_ids = []
    for item in files:
        if not claim_once(session, team_id, file_key(item.file_id)):
            continue
        job_ids.append(
            MODERATE.enqueue(
                session,
                ModeratePayload(channel=inbound.channel, ts=inbound.ts, user=inbound.user, file=item.meta),
                team_id=team_id,
                user_id=inbound.user,
                settings=settings,
            )
        )
    if job_ids:
        log.info("moderation queued channel=%s files=%d", inbound.channel, len(job_ids))
    return job_ids
