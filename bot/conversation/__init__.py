"""Conversations: engagement, prompts, history → chat messages, the context budget, the jobs."""

from bot.conversation.budget import stored_tokens
from bot.history.estimates import use_estimator

# Rows are stored with the estimate the budget will count (see bot.history.estimates).
use_estimator(stored_tokens)
