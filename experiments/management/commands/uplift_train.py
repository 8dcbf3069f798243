import json

from django.core.management.base import BaseCommand, CommandError

from experiments import selectors
from experiments.services.definitions import ExperimentError
from experiments.services.uplift import uplift_model_train
from experiments.models import Experiment
from experiments.uplift import LEARNERS


class Command(BaseCommand):
    help = ("Train a cross-fitted T-learner uplift model on a finished experiment and report its Qini "
            "curve, Qini coefficient and per-decile uplift against random targeting on held-out units.")

    def add_arguments(self, parser):
        parser.add_argument("experiment", help="name or id")
        parser.add_argument("--treatment", required=True, help="the treatment arm (compared with the control)")
        parser.add_argument("--outcome", required=True, help="the metric to predict the uplift of")
        parser.add_argument("--feature", action="append", default=[],
                            help="a pre-treatment attribute to learn from (repeatable; default: all unit "
                                 "attributes, or behaviour before exposure for customer experiments)")
        parser.add_argument("--learner", choices=LEARNERS, default="gbm")
        parser.add_argument("--folds", type=int, default=5)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        try:
            experiment = selectors.experiment_get(options["experiment"])
            model = uplift_model_train(
                experiment, options["treatment"], options["outcome"], features=options["feature"] or None,
                learner=options["learner"], folds=options["folds"], seed=options["seed"],
            )
        except (Experiment.DoesNotExist, ExperimentError) as exc:
            raise CommandError(str(exc)) from None
        info = model.info
        if options["json"]:
            self.stdout.write(json.dumps({"model_id": model.id, **info}, allow_nan=False))
            return
        self.stdout.write(f"uplift model {model.id}: {info['summary']}")
        self.stdout.write(f"features: {', '.join(info['features'])}; {info['evaluation']}")
        self.stdout.write("decile  units  predicted  observed uplift (CI)            random   beats  "
                          "cum. gain  random gain")
        for d in info["deciles"]:
            lo, hi = d["observed_uplift_ci"]
            ci = "n/a" if lo is None else f"{lo:+.4f} to {hi:+.4f}"
            self.stdout.write(
                f"{d['decile']:>6}  {d['units']:>5}  {d['predicted_uplift']:+.4f}    "
                f"{d['observed_uplift']:+.4f} ({ci:<19})  {d['random_uplift']:+.4f}  "
                f"{'yes' if d['beats_random'] else 'no':>5}  {d['cumulative_gain']:>9.1f}  {d['random_gain']:>11.1f}")
