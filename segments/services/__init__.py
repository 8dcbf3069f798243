"""Writes for segments, one module per job; each service owns its transaction. Import from the
module (`from segments.services.membership import segment_refresh`).

specs: a segment payload checked, with every problem's path.
membership: create / update / delete segments, refresh (materialise a version), prune.
schedules: recurring refreshes and re-trains through django-celery-beat (core.schedules).
training: train models (segments.ml) on features from the database, re-train.
scoring: score every customer with a model, in chunks, here or across workers.
families: a model's family of segments kept in step with its newest version.
imported_scores: scores computed elsewhere (an uplift model) stored as a model.
"""
