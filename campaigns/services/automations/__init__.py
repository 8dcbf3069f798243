"""Writes for triggered offers ("automations"), one module per verb:

- create.py: automation_create (from the JSON spec), steps_clean
- lifecycle.py: automation_pause, automation_resume, automation_archive, automation_edit_steps
- triggers.py: automation_read_triggers (segment refreshes, events, dates past a watermark)
- entries.py: entries_insert (entries and first sends in one statement)
- advance.py: sends_advance, entries_complete
- tick.py: automation_tick (what beat runs), automation_wake
"""
