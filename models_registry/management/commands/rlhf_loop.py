"""``manage.py rlhf_loop --project P``: run one pass of a project's RLHF loop now."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from models_registry import loop
from models_registry.models_loop import LoopRun, LoopSettings
from rlhf_platform.errors import Conflict


class Command(BaseCommand):
    help = (
        "Run one pass of a project's RLHF loop in this process: score new items, auto-label "
        "the confident ones (a share still goes to humans as a check), order the rest for "
        "annotators by uncertainty, record disagreements in the error memory. Flags override "
        "the project's loop settings for this pass only; the run records what it used."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project id or exact name")
        parser.add_argument("--model", help="an alias of the loop's model, or name:alias")
        parser.add_argument("--confidence-threshold", type=float)
        parser.add_argument("--human-feedback-ratio", type=float)
        parser.add_argument("--uncertainty", choices=LoopSettings.Uncertainty.values)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--batch-size", type=int)

    def handle(self, *args, project, **options):
        found = (
            Project.objects.filter(pk=int(project)).first()
            if project.isdigit()
            else Project.objects.filter(name=project).first()
        )
        if found is None:
            raise CommandError(f"no such project: {project}")
        names = ("model", "confidence_threshold", "human_feedback_ratio", "uncertainty", "seed",
                 "batch_size")  # fmt: skip
        overrides = {name: options[name] for name in names if options.get(name) is not None}
        try:
            run = loop.loop_run(project=found, trigger=LoopRun.Trigger.COMMAND, overrides=overrides)
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from exc
        except Conflict as exc:
            raise CommandError(str(exc)) from exc
        fields = ("id", "status", "items_scored", "auto_labelled", "checks", "sent_to_humans",
                  "checks_compared", "check_agreement", "errors_found", "message")  # fmt: skip
        self.stdout.write(json.dumps({f: getattr(run, f) for f in fields}))
        if run.status == LoopRun.Status.FAILED:
            raise CommandError(run.message)
