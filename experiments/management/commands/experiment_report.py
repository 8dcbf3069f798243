import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from experiments import selectors
from experiments.services.definitions import ExperimentError
from experiments.services.reports import report_refresh
from experiments.models import Experiment
from experiments.verdicts import ENGINES, report_for_engine
from experiments.presentation import report_csv_write, report_text


class Command(BaseCommand):
    help = "Print an experiment's full analysis: SRM first, then every metric, power, verdict."

    def add_arguments(self, parser):
        parser.add_argument("experiment", help="name or id")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument("--by", default="", help="break the results down by a unit attribute, or segment:NAME "
                                                         "(the segment's members against everyone else)")
        parser.add_argument("--csv", type=Path, help="also write the tables to this CSV file")
        parser.add_argument("--refresh", action="store_true", help="recompute even if the stored report is fresh")
        parser.add_argument("--engine", choices=ENGINES, default="frequentist",
                            help="whose verdict to give: frequentist (p-values) or bayesian (chance to win, "
                                 "expected loss); every comparison carries both")

    def handle(self, *args, **options):
        try:
            experiment = selectors.experiment_get(options["experiment"])
        except Experiment.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        try:
            report = report_refresh(experiment, by=options["by"], force=options["refresh"])
        except (ValueError, ExperimentError) as exc:
            raise CommandError(str(exc)) from None
        body = report_for_engine(report.body, options["engine"])
        if options["csv"]:
            with open(options["csv"], "w", newline="", encoding="utf-8") as fh:
                rows = report_csv_write(body, fh)
        if options["json"]:
            self.stdout.write(json.dumps(body, allow_nan=False))
        else:
            self.stdout.write(report_text(body))
            if options["csv"]:
                self.stdout.write(f"{rows} rows written to {options['csv']}")
