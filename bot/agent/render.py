"""Steps and feedback as slack_sdk's own models: streaming chunks and Block Kit blocks.

No I/O here; the reply writers send what these build.
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import (
    ContextActionsBlock,
    ContextBlock,
    FeedbackButtonObject,
    FeedbackButtonsElement,
    MarkdownTextObject,
)
from slack_sdk.models.blocks.block_elements import UrlSourceElement
from slack_sdk.models.messages.chunk import PlanUpdateChunk, TaskUpdateChunk

from bot.agent.feedback import FEEDBACK_ACTION_ID, NEGATIVE, POSITIVE, Trace, encode_value
from bot.agent.steps import Step, context_text

TASK_DISPLAY_MODE = "timeline"  # task cards interleaved with the streamed text


def task_chunk(step: Step) -> TaskUpdateChunk:
    return TaskUpdateChunk(
        id=step.id,
        title=step.title,
        status=step.status,
        output=step.output,
        sources=[UrlSourceElement(url=source.url, text=source.text) for source in step.sources] or None,
    )


def plan_chunk(title: str) -> PlanUpdateChunk:
    return PlanUpdateChunk(title=title)


def steps_block(steps: Sequence[Step]) -> ContextBlock | None:
    """The steps as one compact context block (answers posted and updated, not streamed)."""
    if not steps:
        return None
    return ContextBlock(elements=[MarkdownTextObject(text=context_text(steps))])


def feedback_block(trace: Trace) -> ContextActionsBlock:
    """👍/👎 under an answer."""
    return ContextActionsBlock(
        elements=[
            FeedbackButtonsElement(
                action_id=FEEDBACK_ACTION_ID,
                positive_button=FeedbackButtonObject(
                    text="👍", accessibility_label="Good answer", value=encode_value(POSITIVE, trace)
                ),
                negative_button=FeedbackButtonObject(
                    text="👎", accessibility_label="Bad answer", value=encode_value(NEGATIVE, trace)
                ),
            )
        ]
    )
