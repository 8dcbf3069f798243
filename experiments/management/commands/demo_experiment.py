import json

from django.core.management.base import BaseCommand, CommandError

from experiments.services.definitions import ExperimentError
from experiments.services.demo import experiment_from_demo


class Command(BaseCommand):
    help = ("Build the experiment 'demo-spring' from the randomized campaign load_demo planted "
            "(customers' demo_campaign_arm, exposed at the campaign date).")

    def add_arguments(self, parser):
        parser.add_argument("--name", default="demo-spring")
        parser.add_argument("--replace", action="store_true", help="rebuild it if it exists (default: refuse)")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        try:
            experiment = experiment_from_demo(options["name"], replace=options["replace"])
        except ExperimentError as exc:
            raise CommandError(str(exc)) from None
        arms = {a.name: a.exposures.count() for a in experiment.arms.all()}
        if options["json"]:
            self.stdout.write(json.dumps({"experiment": experiment.name, "id": experiment.id, "arms": arms}))
        else:
            sizes = ", ".join(f"{k} {v:,}" for k, v in arms.items())
            self.stdout.write(f"experiment {experiment.name!r} (id {experiment.id}) built: {sizes}; "
                              f"run experiment_report {experiment.name}")
