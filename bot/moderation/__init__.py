"""Channel image moderation: every image posted in a watched channel is judged once by the model
against a policy, and allowed, reported to moderators, or removed. See docs/moderation.md.

Pure: policy.py (categories, the forced-function request), verdict.py (parsing the answer),
trigger.py (which files, which channels), plan.py (what to do), report.py (what to say).
I/O: intake.py (web: claim and enqueue), store.py (tables), job.py (worker jobs).
"""
