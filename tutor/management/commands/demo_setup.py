"""manage.py demo_setup: the demo course, accounts admin/demo and learner/demo, simulated history, a first fit."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandParser

from tutor.demo import demo_setup


class Command(BaseCommand):
    help = "Load the demo arithmetic course with demo accounts, a simulated class history and a first fit."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-simulate", action="store_true", help="no simulated classmates")
        parser.add_argument("--no-fit", action="store_true", help="do not fit a model")

    def handle(self, *args, no_simulate: bool, no_fit: bool, **options) -> None:
        summary = demo_setup(simulate=not no_simulate, fit=not no_fit)
        self.stdout.write(json.dumps(summary, indent=2, default=str))
