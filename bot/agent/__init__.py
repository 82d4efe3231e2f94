"""Slack's agent surface: visible steps, feedback on answers, the native Stop, better waiting.

Pure logic (steps.py, feedback.py, waiting.py) apart from its I/O (feedback_store.py, stops.py,
session.py). This package imports only the database layer and slack_sdk's models; the
conversation and Slack listener packages build on it.
"""
