"""Writes for campaigns, one module per verb; callers import the module they need.

- offers.py: offer_create
- drafts.py: campaign_create (from the JSON spec), campaign_preview
- launch.py: campaign_check, campaign_launch, campaign_run_recurring (the ledger, arms, experiment)
- lifecycle.py: campaign_wake, campaign_heartbeat, campaign_finish_if_done, pause, resume, cancel
- pump.py: campaign_pump (what beat runs every few seconds)
- unsubscribe.py: unsubscribe_apply

Services never import campaigns.tasks: they queue work by task name (core.jobs.enqueue).
"""
