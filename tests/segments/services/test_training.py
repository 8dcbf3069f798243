"""segments/services/training.py: models trained on the database, judged against the
planted ground truth of the demo data (customers/demo.py), scored in chunks."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from django.utils import timezone
from sklearn.metrics import adjusted_rand_score

from customers import demo
from customers.features import customer_attributes
from customers.models import AttributeDefinition, Customer
from customers.services.demo import demo_load
from segments.ml.rfm import RFM_TIERS
from segments.services import scoring, training
from segments.models import Membership, ModelScore, Segment, SegmentModel
from segments.migration import family_migration
from segments.selectors import segment_customers
from tests.factories import CustomerFactory, EventFactory, OrderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_base():
    return demo_load(customers=5000, seed=7)


def today():
    return timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)


def scores_of(model: SegmentModel) -> pd.DataFrame:
    rows = ModelScore.objects.filter(model=model).values_list("customer_id", "score", "label")
    return pd.DataFrame.from_records(list(rows), columns=["customer_id", "score", "label"]).set_index("customer_id")


def family_members(family: str) -> dict[str, set[int]]:
    return {s.name: set(segment_customers(s).values_list("id", flat=True))
            for s in Segment.objects.filter(family=family)}


# -------------------------------------------------------------------- planted truth


def test_kmeans_recovers_the_planted_clusters(demo_base):
    cutoff = today() - timedelta(days=demo.CHURN_DAYS)  # where demo.py plants the clusters
    model = training.model_train("kmeans", as_of=cutoff)
    scored = scores_of(model)
    truth = customer_attributes()["planted_cluster"].reindex(scored.index)
    ari = adjusted_rand_score(truth, scored["label"])
    print(f"adjusted Rand index vs planted clusters: {ari:.3f} (k={model.metrics['k']})")
    assert ari >= 0.8
    assert model.metrics["k"] == len(demo.CLUSTERS)
    assert len(scored) == Customer.objects.count()


def test_kmeans_trained_on_a_draw_of_a_larger_base_still_recovers_the_planted_clusters(demo_base, monkeypatch):
    """Past max_rows, training reads range by range and keeps a random draw (memory stays
    that of one range and the draw); every customer is still scored."""
    from customers.features import customer_id_ranges
    from segments import frames

    monkeypatch.setattr(frames, "customer_id_ranges", lambda chunk=50_000: customer_id_ranges(1000))
    cutoff = today() - timedelta(days=demo.CHURN_DAYS)
    model = training.model_train("kmeans", as_of=cutoff, max_rows=1500)
    assert model.training_rows == 1500
    scored = scores_of(model)
    assert len(scored) == Customer.objects.count()
    truth = customer_attributes()["planted_cluster"].reindex(scored.index)
    assert adjusted_rand_score(truth, scored["label"]) >= 0.8


def test_kmeans_clusters_become_one_family_of_segments_partitioning_everyone(demo_base):
    model = training.model_train("kmeans", k_range=[5])
    members = family_members(model.name)
    assert len(members) == 5
    everyone = set(Customer.objects.values_list("id", flat=True))
    assert set().union(*members.values()) == everyone
    assert sum(len(m) for m in members.values()) == len(everyone)  # no overlaps
    names = set(members)
    assert "kmeans: Champions" in names
    ranks = sorted(Segment.objects.filter(family=model.name).values_list("params__rank", flat=True))
    assert ranks == [0, 1, 2, 3, 4]


def test_churn_propensity_finds_the_planted_drivers(demo_base):
    model = training.model_train("propensity", churn_days=demo.CHURN_DAYS)
    assert model.params["target"] == "churn" and model.params["churn_days"] == demo.CHURN_DAYS
    assert model.metrics["roc_auc"] >= 0.75
    top = [row["feature"] for row in model.info["feature_importance"][:6]]
    print("top churn features:", top, "roc_auc", round(model.metrics["roc_auc"], 3))
    assert "recency_days" in top
    assert "events_support_ticket_90d" in top
    assert {"discount_user", "discount_orders"} & set(top)


def test_churn_bands_rank_customers_like_the_ml_mask(demo_base):
    model = training.model_train("propensity", churn_days=demo.CHURN_DAYS,
                                 features=["recency_days", "events_support_ticket_90d", "discount_user"])
    scores = scores_of(model)["score"]
    segments = {s.params["rank"]: s for s in Segment.objects.filter(family=model.name)}
    high = set(segment_customers(segments[2]).values_list("id", flat=True))
    # The top 10% by score, ties to the lower customer id.
    ranked = scores.sort_index(kind="mergesort").sort_values(ascending=False, kind="mergesort")
    assert high == set(ranked.index[:math.ceil(0.1 * len(scores))])
    sizes = sorted(s.size for s in segments.values())
    assert sizes == [500, 1000, 3500]
    assert segments[2].params["worse"] == "higher"
    assert segments[2].params["edges"][1] is None  # nothing worse than the highest risk


def test_rfm_tiers_cover_everyone(demo_base):
    model = training.model_train("rfm")
    members = family_members(model.name)
    assert len(members) == len(RFM_TIERS)
    assert sum(len(m) for m in members.values()) == Customer.objects.count()
    assert model.metrics["tier_counts"]["Champions"] == len(members["rfm: Champions"])


def test_value_model_bands_by_top_percentage(demo_base):
    model = training.model_train("value", churn_days=90)
    assert model.metrics["beats_baseline"] is True
    top = Segment.objects.get(family=model.name, params__rank=0)
    assert top.size == 500 and top.params["worse"] == "lower"


# ----------------------------------------------------------------------- no leakage


def test_churn_training_sees_features_before_the_cutoff_and_labels_after(monkeypatch):
    now = timezone.now()
    stays, leaves, *_ = CustomerFactory.create_batch(6, signup_date=(now - timedelta(days=400)).date())
    late = CustomerFactory(signup_date=(now - timedelta(days=10)).date())  # joined after the cutoff
    OrderFactory(customer=stays, ordered_at=now - timedelta(days=200))
    OrderFactory(customer=stays, ordered_at=now - timedelta(days=20))  # after the cutoff
    OrderFactory(customer=leaves, ordered_at=now - timedelta(days=150))
    EventFactory(customer=leaves, kind="visit", occurred_at=now - timedelta(days=120))
    captured = {}

    def fake_train(frame, target, features, random_state=0):
        captured.update(frame=frame, target=target)
        raise ValueError("stop here")

    monkeypatch.setattr(training, "propensity_train", fake_train)
    with pytest.raises(training.TrainingError, match="stop here"):
        training.model_train("propensity", churn_days=90, now=now)
    frame, target = captured["frame"], captured["target"]
    assert late.pk not in frame.index  # not a customer at the cutoff
    assert frame.loc[stays.pk, "frequency"] == 1  # the order after the cutoff is not a feature
    assert frame.loc[stays.pk, "recency_days"] == pytest.approx(110, abs=0.01)
    assert not target[stays.pk] and target[leaves.pk]


def test_propensity_on_a_boolean_attribute_excludes_the_target_from_features(monkeypatch):
    AttributeDefinition.objects.create(name="upgraded", type="boolean")
    for i in range(10):
        CustomerFactory(attributes={"upgraded": i % 2 == 0})
    captured = {}

    def fake_train(frame, target, features, random_state=0):
        captured.update(features=features, target=target)
        raise ValueError("stop")

    monkeypatch.setattr(training, "propensity_train", fake_train)
    with pytest.raises(training.TrainingError):
        training.model_train("propensity", target="upgraded")
    assert "upgraded" not in captured["features"]
    assert captured["target"].dropna().sum() == 5


def test_unknown_target_or_feature_is_refused():
    CustomerFactory.create_batch(6)
    with pytest.raises(training.TrainingError, match="target must be a boolean attribute"):
        training.model_train("propensity", target="nope")
    with pytest.raises(training.TrainingError, match="unknown feature"):
        training.model_train("kmeans", features=["recency_days", "shoe_size"])


# -------------------------------------------------------------------------- scoring


@pytest.fixture
def small_base():
    now = timezone.now()
    rng = np.random.default_rng(0)
    for i in range(120):
        customer = CustomerFactory(signup_date=(now - timedelta(days=int(rng.integers(30, 700)))).date())
        for _ in range(int(rng.integers(0, 5))):
            OrderFactory(customer=customer, ordered_at=now - timedelta(days=float(rng.uniform(1, 400))),
                         amount=int(rng.integers(5, 500)))


def test_scoring_split_across_range_tasks_covers_everyone_once(small_base, django_capture_on_commit_callbacks):
    model = training.model_train("rfm", score=False)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        ranges = scoring.model_score_start(model, chunk=30)
    assert len(queued) == len(ranges) >= 4
    assert SegmentModel.objects.get(pk=model.pk).scored_at is None
    finished = [scoring.model_score_range_run(model.pk, low, high) for low, high in ranges]
    assert finished == [False] * (len(ranges) - 1) + [True]
    # A redelivered message changes nothing: its range is replaced, not doubled.
    low, high = ranges[0]
    assert scoring.model_score_range_run(model.pk, low, high) is False
    assert ModelScore.objects.filter(model=model).count() == Customer.objects.count()
    model.refresh_from_db()
    assert model.scored_at is not None
    # The last range materialised the family.
    assert sum(s.size for s in Segment.objects.filter(family=model.name)) == Customer.objects.count()


def test_chunked_scoring_equals_scoring_at_once(small_base):
    model = training.model_train("kmeans", k_range=[3], score=False)
    scoring.model_score(model, chunk=17)
    chunked = scores_of(model).sort_index()
    scoring.model_score(model, chunk=10_000)
    whole = scores_of(model).sort_index()
    pd.testing.assert_frame_equal(chunked, whole)
    assert len(whole) == 120


# ------------------------------------------------------------------------- re-train


def test_retrain_makes_a_new_version_and_moves_the_family(small_base):
    first = training.model_train("kmeans", k_range=[3])
    family = list(Segment.objects.filter(family=first.name).order_by("id"))
    second = training.model_retrain(first.pk)
    assert (second.name, second.version, second.kind) == (first.name, 2, "kmeans")
    assert second.features == first.features and second.params["k_range"] == [3]
    moved = list(Segment.objects.filter(family=first.name).order_by("id"))
    assert [s.pk for s in moved] == [s.pk for s in family]
    assert {s.model_id for s in moved} == {second.pk}
    assert {s.current_version for s in moved} == {2}
    matrix = family_migration(first.name)
    assert (matrix["old_version"], matrix["new_version"]) == (1, 2)
    assert sum(r["customers"] for r in matrix["matrix"]) == 120


def test_old_model_versions_are_pruned_with_their_scores(small_base):
    model = training.model_train("rfm")
    for _ in range(3):
        model = training.model_retrain(model.pk)
    versions = list(SegmentModel.objects.filter(name="rfm").order_by("version").values_list("version", flat=True))
    assert versions == [3, 4]
    assert ModelScore.objects.filter(model__name="rfm").count() == 2 * 120
    assert not Membership.objects.filter(segment__model__version__lt=3).exists()


# -------------------------------------------------------------------------- guard rail


def test_a_propensity_model_with_a_leaking_feature_makes_no_segments_until_overridden(marketer):
    from segments.services.families import model_segments_release

    AttributeDefinition.objects.create(name="upgraded", type="boolean")
    AttributeDefinition.objects.create(name="premium_since_upgrade", type="boolean")  # set by the upgrade itself
    for i in range(80):
        CustomerFactory(attributes={"upgraded": i % 2 == 0, "premium_since_upgrade": i % 2 == 0})
    model = training.model_train("propensity", target="upgraded")
    assert [c["code"] for c in model.info["concerns"]] == ["leakage"]
    assert "premium_since_upgrade" in model.info["concerns"][0]["message"]
    assert model.info["segments_held"] is True
    assert ModelScore.objects.filter(model=model).count() == 80  # scored, so its page can show it
    assert not Segment.objects.filter(family=model.name).exists()

    refreshes = model_segments_release(model.id, user=marketer)
    model.refresh_from_db()
    assert len(refreshes) == 3 and model.info["segments_held"] is False
    assert model.info["override"]["by"] == marketer.username
    assert sum(s.size for s in Segment.objects.filter(family=model.name)) == 80
