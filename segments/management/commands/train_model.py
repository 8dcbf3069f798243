import json

from django.core.management.base import BaseCommand, CommandError

from core.formatting import duration
from core.schedules import ScheduleInvalid, schedule_clean
from segments.services import schedules, training


class Command(BaseCommand):
    help = "Train a model (a new version of its name), score every customer and refresh its segments."

    def add_arguments(self, parser):
        parser.add_argument("--kind", required=True, choices=["kmeans", "rfm", "propensity", "value"])
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--target", help="boolean attribute (propensity) or numeric attribute (value)")
        target.add_argument("--churn-days", type=int, help="churn / spend window after the cutoff (default 90)")
        parser.add_argument("--features", nargs="+", help="feature columns (default: per kind)")
        parser.add_argument("--k", nargs="+", type=int, dest="k_range", help="k values to try (kmeans; default 2-8)")
        parser.add_argument("--name", help="model name (default: the kind, or churn / <target> propensity)")
        parser.add_argument("--max-rows", type=int, default=training.MAX_TRAINING_ROWS,
                            help="train on a random sample of at most this many customers")
        parser.add_argument("--no-segments", action="store_true", help="score, but create or refresh no segments")
        parser.add_argument("--split-scoring", action="store_true",
                            help="queue one Celery task per id range to score; workers finish the segments")
        parser.add_argument("--schedule", help="also re-train on a schedule: a JSON schedule, e.g. "
                                               "'{\"every\": \"week\", \"at\": \"03:00\"}'")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        schedule = None
        if options["schedule"]:
            try:
                schedule = json.loads(options["schedule"])
                schedule_clean(schedule)
            except (json.JSONDecodeError, ScheduleInvalid) as exc:
                raise CommandError(f"--schedule: {exc}") from None
        if options["kind"] in ("kmeans", "rfm") and (options["target"] or options["churn_days"]):
            raise CommandError(f"--kind {options['kind']} takes no --target or --churn-days")
        try:
            model = training.model_train(
                options["kind"], name=options["name"], features=options["features"], target=options["target"],
                churn_days=options["churn_days"], k_range=options["k_range"], max_rows=options["max_rows"] or None,
                segments=not options["no_segments"], split_scoring=options["split_scoring"],
            )
        except training.TrainingError as exc:
            raise CommandError(str(exc)) from None
        if schedule is not None:
            schedules.model_schedule_set(model, schedule)
        segments = list(model.segments.order_by("name").values("id", "name", "size"))
        if options["json"]:
            body = {"model": model.pk, "name": model.name, "kind": model.kind, "version": model.version,
                    "training_rows": model.training_rows, "seconds": model.seconds, "features": model.features,
                    "metrics": model.metrics, "segments": segments}
            if "feature_importance" in model.info:
                body["feature_importance"] = model.info["feature_importance"][:10]
            self.stdout.write(json.dumps(body, default=str))
            return
        metrics = model.metrics
        shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        text = ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in list(shown.items())[:6])
        self.stdout.write(f"trained {model.name} v{model.version} ({model.kind}) on {model.training_rows:,} customers "
                          f"in {duration(model.seconds)}: {text}; {len(segments)} segment(s)")
