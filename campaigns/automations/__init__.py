"""Triggered offers ("automations"): models, the send ledger's claim and reconcile, the
sending loop, reads (selectors), the REST API, pages and their urls.

The writes stay in campaigns/services/automations/, beside the campaign services, as in every
app: services are split by verb and own their transactions.
"""
