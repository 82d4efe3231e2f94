"""The conversation history: threads, messages, attachments and users, stored per workspace.

The store lives in :mod:`bot.history.store`; this package holds nothing else at import.
"""
