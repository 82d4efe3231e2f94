"""Conversations: engagement, prompts, the context budget, one model turn, the jobs."""
