"""``manage.py base_model_build_tiny NAME``: a tiny model built from a config, with a
tokenizer trained on a project's texts (or a JSONL file's), registered as a base model."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from annotation.selectors import project_texts
from models_registry import services
from rlhf_platform import request_context


class Command(BaseCommand):
    help = "Build and register a tiny encoder (reward backbone) or causal LM (for DPO)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--architecture", choices=["encoder", "causal_lm"], default="encoder")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument(
            "--project", type=int, help="train the tokenizer on this project's items"
        )
        source.add_argument("--file", help="a JSONL file of prompt/chosen/rejected rows")
        parser.add_argument("--vocab-size", type=int, default=2000)

    def handle(self, *args, name, architecture, project=None, file=None, vocab_size, **options):
        if project is not None:
            found = Project.objects.filter(pk=project).first()
            if found is None:
                raise CommandError(f"no project {project}")
            texts = project_texts(project=found)
        else:
            texts = []
            with open(file, encoding="utf-8") as handle:
                for line in handle:
                    if line.strip():
                        row = json.loads(line)
                        texts.extend(str(row.get(k, "")) for k in ("prompt", "chosen", "rejected"))
        try:
            with request_context.bind(request_id_value="base-model-build-tiny"):
                base = services.base_model_build_tiny(
                    name=name, architecture=architecture, texts=texts, vocab_size=vocab_size
                )
        except (ValidationError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{base.name}: {base.description}")
