"""Writes to experiments, one module per verb; callers import from the module.

definitions: create and delete experiments (and the built-in metrics).
exposures: record who saw which arm, from SQL (campaign launch) or from Python.
reports: compute and store a report, or queue that.
demo: the past campaign planted by load_demo, as an experiment.
uplift: train uplift models, score customers, turn the top share into a segment.

What campaign launch calls (campaigns import experiments, never the other way round):

    experiment = experiment_create("spring-offer", [("holdout", 1, True), ("offer", 9, False)],
                                   primary_metric="conversion", secondary_metrics=["revenue"],
                                   attribution_days=14, salt=campaign_salt)
    arm = assignment.arm_for(experiment.salt, customer.id, [("holdout", 1), ("offer", 9)])
    exposures_insert_from_sql(experiment, "SELECT customer_id, arm, assigned_at AS exposed_at "
                              "FROM campaigns_ledger WHERE campaign_id = %s", [campaign.id])

Exposures are written once per (experiment, unit): a rerun of a launch adds nothing.
"""
