import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from experiments.importers import ImportFailed, experiment_import
from experiments.kinds import KINDS
from experiments.models import Experiment


def _weights(values: list[str]) -> dict[str, float]:
    weights = {}
    for value in values:
        arm, sep, weight = value.rpartition("=")
        try:
            weights[arm.strip()] = float(weight)
        except ValueError:
            raise CommandError(f"--weight {value!r}: expected ARM=NUMBER") from None
        if not sep or not arm.strip():
            raise CommandError(f"--weight {value!r}: expected ARM=NUMBER")
    return weights


def _prior(text: str | None) -> dict | None:
    if not text:
        return None
    mean, sep, sd = text.partition(",")
    try:
        if not sep or not float(sd) > 0:
            raise ValueError
        return {"mean": float(mean), "variance": float(sd) ** 2, "proper": True}
    except ValueError:
        raise CommandError(f"--prior {text!r}: expected MEAN,SD with SD > 0, e.g. 0,0.1") from None


class Command(BaseCommand):
    help = ("Import per-unit results of a test run elsewhere: one row per unit with its arm and outcomes; "
            "other columns are kept as unit attributes for breakdowns and uplift models.")

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--name", required=True, help="the experiment's name")
        parser.add_argument("--unit", help="column with the unit id (default: the row number)")
        parser.add_argument("--arm", required=True, help="column with the arm label")
        parser.add_argument("--control", required=True, help="the control arm's label")
        parser.add_argument("--metric", action="append", default=[], required=True, metavar="COL:KIND",
                            help=f"an outcome column, KIND one of {', '.join(KINDS)} (repeatable; the first is primary)")
        parser.add_argument("--primary", help="the primary metric's column, if not the first --metric")
        parser.add_argument("--covariate", help="CUPED: a numeric pre-treatment column for continuous metrics, or "
                                 "PRE_NUMERATOR/PRE_DENOMINATOR (two columns) for ratio metrics")
        parser.add_argument("--weight", action="append", default=[], metavar="ARM=W",
                            help="planned assignment weight of an arm, for the SRM check (default: equal)")
        parser.add_argument("--mode", choices=Experiment.Mode.values, default=Experiment.Mode.FIXED)
        parser.add_argument("--alpha", type=float, default=0.05)
        parser.add_argument("--replace", action="store_true",
                            help="replace an experiment of the same name (default: refuse)")
        parser.add_argument("--rejects", type=Path, help="where to write rejected rows (default: var/rejects/)")
        parser.add_argument("--prior", metavar="MEAN,SD",
                            help="the Bayesian engine's normal prior on the relative effect, e.g. 0,0.1 "
                                 "(default: flat, as GrowthBook)")
        parser.add_argument("--refuse-missing", action="store_true",
                            help="reject rows with a blank outcome (default: missing for that metric only, counted)")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, **options):
        try:
            result = experiment_import(
                options["file"], name=options["name"], arm_column=options["arm"], control=options["control"],
                metrics=options["metric"], unit_column=options["unit"], primary=options["primary"],
                covariate=options["covariate"], weights=_weights(options["weight"]), replace=options["replace"],
                mode=options["mode"], alpha=options["alpha"], rejects_path=options["rejects"],
                refuse_missing=options["refuse_missing"], prior=_prior(options["prior"]),
            )
        except ImportFailed as exc:
            raise CommandError(f"{options['file']}: {exc}") from None
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), default=str))
        else:
            self.stdout.write(result.summary())
