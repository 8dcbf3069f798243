"""Uplift models: train one on an experiment, score customers, segment the top share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import pandas as pd
from django.db import transaction
from django.utils import timezone

from core.formatting import p_clause
from customers.features import customer_attributes, customer_features
from customers.models import Customer
from segments.ml.guard import Concern, feature_target_association, score_spread, uplift_concerns
from segments.services.imported_scores import model_scores_import
from segments.services.membership import segment_create, segment_refresh
from segments.services.specs import SpecInvalid

from .. import outcomes, selectors, uplift
from ..kinds import kind_get
from ..models import Experiment, UpliftModel
from .definitions import ExperimentError


def _unit_features(frame: pd.DataFrame, features: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
    seen: dict[str, None] = {}
    for attrs in frame["attributes"]:
        seen.update(dict.fromkeys(attrs))
    chosen = list(features) if features else list(seen)
    unknown = [f for f in chosen if f not in seen]
    if unknown:
        raise ExperimentError(f"unknown unit attribute(s) {unknown}; the units have {list(seen)}")
    return uplift.frame_from_records(frame["attributes"], chosen), chosen


def _customer_feature_frame(customer_ids: Sequence[int], as_of: datetime,
                            features: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
    """Behaviour before ``as_of`` (recency, frequency, ...) and, if named, attributes."""
    # Only the id range in play: the feature query otherwise covers the whole base.
    id_range = (min(customer_ids), max(customer_ids) + 1)
    behaviour = customer_features(as_of, id_range=id_range)
    attributes = customer_attributes(id_range=id_range)
    wanted = list(features) if features else list(behaviour.columns)
    columns = {}
    for name in wanted:
        if name in behaviour.columns:
            columns[name] = behaviour[name]
        elif name in attributes.columns:
            columns[name] = attributes[name]
        else:
            raise ExperimentError(f"unknown feature {name!r}: neither a behavioural feature nor a customer attribute")
    frame = pd.DataFrame(columns).reindex(list(customer_ids))
    records = frame.to_dict("records")
    return uplift.frame_from_records(records, wanted), wanted


def _uplift_summary(info: dict, treatment: str, control: str, metric: str) -> str:
    deciles = info["deciles"]
    top = deciles[0]
    null = info.get("qini_null") or {}
    # Beating random means beyond what shuffled treatment labels reach (the guard's
    # test), not merely a Qini above 0.
    beats = info["qini_coefficient"] > 0 and not any(c.code == "no_signal" for c in uplift_concerns(info))
    gains = [(d["top_fraction"], d["cumulative_gain"], d["random_gain"]) for d in deciles]
    tested = f", {p_clause(null['p_value'])} by chance" if null.get("p_value") is not None else ""
    line = (f"Uplift of {treatment} over {control} on {metric}: targeting by predicted uplift "
            f"{'beats' if beats else 'does not beat'} random targeting on held-out units "
            f"(Qini coefficient {info['qini_coefficient']:.5f}{tested}). ")
    if top["observed_uplift"] is not None and top["random_uplift"] is not None:
        line += (f"Top decile: observed uplift {top['observed_uplift']:+.4f} vs {top['random_uplift']:+.4f} "
                 f"on average; ")
    line += f"{info['deciles_beating_random']} of 10 deciles are above the average effect."
    if not beats:
        line += " Do not target by this model; treat everyone or no one."
    elif gains[2][1] is not None and gains[2][2]:
        line += (f" Treating the top 30% by predicted uplift yields {gains[2][1]:.1f} incremental "
                 f"outcomes vs {gains[2][2]:.1f} for 30% chosen at random.")
    return line


@transaction.atomic
def uplift_model_train(
    experiment: Experiment,
    treatment: str,
    outcome: str,
    *,
    features: Sequence[str] | None = None,
    learner: str = "gbm",
    folds: int = 5,
    seed: int = 0,
) -> UpliftModel:
    """Train and store a cross-fitted T-learner of ``treatment`` against the control arm.

    Features: for imported experiments, the unit attributes from the file (all, or those
    named); for customer experiments, behaviour computed as of the first exposure (so it
    is pre-treatment by construction) plus any customer attributes named in ``features``."""
    arms = {a.name: a for a in experiment.arms.all()}
    if treatment not in arms:
        raise ExperimentError(f"no arm {treatment!r} in {experiment.name!r}; arms are {list(arms)}")
    control = next(a for a in arms.values() if a.is_control)
    if arms[treatment].is_control:
        raise ExperimentError(f"{treatment!r} is the control arm; name a treatment arm")
    metric = experiment.metrics.filter(name=outcome).first()
    if metric is None:
        raise ExperimentError(f"no metric {outcome!r} in {experiment.name!r}; metrics are "
                              f"{list(experiment.metrics.values_list('name', flat=True))}")
    if len(kind_get(metric.kind).columns(metric.name)) > 1 or metric.denominator_source:
        raise ExperimentError(f"{outcome!r} is a ratio metric: an uplift model needs one value per unit")
    imported = experiment.source == Experiment.Source.IMPORTED
    units = outcomes.unit_values(experiment, [metric], arm_ids=[arms[treatment].id, control.id], attributes=imported)
    if units.empty:
        raise ExperimentError("no units in these arms")
    if imported:
        frame, chosen = _unit_features(units, features)
        source = "unit_attributes"
        as_of = None
    else:
        as_of = selectors.exposure_span(experiment)[0]
        frame, chosen = _customer_feature_frame(units["customer_id"].astype(int).tolist(), as_of, features)
        source = "customer_features"
    treated = (units["arm_id"] == arms[treatment].id).to_numpy().astype(int)
    y = units[metric.name].to_numpy(float)
    try:
        model, info, _held_out = uplift.uplift_train(frame, treated, y, binary=kind_get(metric.kind).share,
                                                    learner=learner, folds=folds, seed=seed, alpha=experiment.alpha)
    except ValueError as exc:
        raise ExperimentError(str(exc)) from None
    # For the guard rail (segments.ml.guard): one score for every unit, or a feature that
    # nearly is the outcome, must be said before the model becomes a segment. The spread is
    # the final model's, the one that scores customers for a segment: with no feature that
    # varies, cross-fitted scores still differ by fold, but every customer gets the same one.
    info["score_spread"] = score_spread(model.predict(frame))
    info["target_association"] = feature_target_association(frame, y)
    # "treated" and "control" in info are unit counts; the arms go under their own keys.
    info.update(experiment=experiment.name, treatment_arm=treatment, control_arm=control.name, outcome=metric.name,
                feature_source=source, features_as_of=as_of.isoformat() if as_of else None)
    info["summary"] = _uplift_summary(info, treatment, control.name, metric.name)
    return UpliftModel.objects.create(
        experiment=experiment, treatment_arm=arms[treatment], control_arm=control, metric=metric,
        feature_source=source, features=chosen, model=uplift.model_dump(model), info=info,
    )


def uplift_scores(model_id: int, *, customer_ids: Iterable[int] | None = None,
                  now: datetime | None = None) -> list[tuple[int, float]]:
    """(customer id, predicted uplift) for every customer (or those given).

    Behavioural features as of ``now`` for models trained on customer experiments,
    customer attributes of the same names for models trained on imported unit attributes."""
    stored = selectors.uplift_model_get(model_id)
    model = uplift.model_load(stored.model)
    ids = list(customer_ids) if customer_ids is not None else list(
        Customer.objects.order_by("id").values_list("id", flat=True))
    if not ids:
        return []
    if stored.feature_source == "customer_features":
        frame, _ = _customer_feature_frame(ids, now or timezone.now(), stored.features)
    else:
        attributes = customer_attributes().reindex(ids)
        records = attributes.reindex(columns=stored.features).to_dict("records")
        frame = uplift.frame_from_records(records, stored.features)
    return [(int(i), float(s)) for i, s in zip(ids, model.predict(frame))]


class ModelConcerns(ExperimentError):
    """The model shows no signal or a likely leak, and nobody said to use it anyway."""

    def __init__(self, concerns: list[Concern]):
        self.concerns = concerns
        super().__init__(" ".join(c.message for c in concerns)
                         + " Nothing was made; confirm you want a segment from it anyway to go ahead.")


def uplift_model_concerns(model_id: int) -> list[Concern]:
    """Why this model should not choose customers, in words (empty when it can)."""
    return uplift_concerns(selectors.uplift_model_get(model_id).info or {})


@transaction.atomic
def uplift_segment_create(model_id: int, fraction: float, name: str, *, user=None, ties: str | None = None,
                          override: bool = False):
    """Close the loop: the top ``fraction`` by predicted uplift becomes a model segment.

    The scores go to segments as an `uplift` model, so the segment refreshes, shows its
    history and feeds the next campaign like any other model segment.

    Guard rails: a model with no signal or a likely leak needs ``override``; a top share
    that ends inside a block of equal scores is refused unless ``ties="include"`` takes
    every tied customer (equal scores ordered by id would pick customers 1 to N). One
    transaction: a refusal after scoring leaves no imported scores behind."""
    if not 0 < fraction <= 1:
        raise ExperimentError("the top share must be above 0% and at most 100%")
    stored = selectors.uplift_model_get(model_id)
    concerns = uplift_concerns(stored.info or {})
    if concerns and not override:
        raise ModelConcerns(concerns)
    scored = uplift_scores(model_id)
    scores_model = model_scores_import(
        f"uplift-{model_id}", "uplift", scored,
        params={"uplift_model": model_id, "experiment": stored.experiment_id},
        info={"qini_coefficient": stored.info.get("qini_coefficient"), "qini_p_value": stored.info.get("qini_p_value"),
              "source": "experiments.UpliftModel",
              "concerns": [c.as_dict() for c in concerns], "override": bool(concerns)},
        features=list(stored.features),
    )
    spec = {"name": name, "kind": "uplift", "model": scores_model.id, "top_fraction": fraction}
    if ties:
        spec["ties"] = ties
    try:
        segment = segment_create(spec, user=user)
    except SpecInvalid as exc:
        # Said as the segments app says it, without its payload paths ("ties: ...").
        raise ExperimentError(" ".join(e["message"] for e in exc.errors)) from None
    segment_refresh(segment)
    segment.refresh_from_db()
    return segment
