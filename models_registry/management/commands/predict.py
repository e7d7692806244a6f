"""``manage.py predict VERSION_OR_ALIAS FILE``: score a JSONL file of pairs."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from models_registry import selectors, services
from models_registry.artifacts import ArtifactCorrupted
from rlhf_platform import request_context

BATCH = 256


class Command(BaseCommand):
    help = (
        "Score pairs with a reward-model version (name@N, name:alias or id). FILE is JSONL with "
        "prompt, response_a, response_b (and optionally item_ref) per line, or - for stdin; "
        "one JSON result per line is written to stdout (or --output). Every prediction is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("ref")
        parser.add_argument("file")
        parser.add_argument("--output", "-o", help="write the results here instead of stdout")

    def handle(self, *args, ref, file, output=None, **options):
        version = selectors.version_resolve(ref=ref)
        if version is None:
            raise CommandError(f"no such version: {ref}")
        if version.kind != "reward":
            raise CommandError(f"{version.ref} is a {version.kind} model, not a reward model")
        source = sys.stdin if file == "-" else open(file, encoding="utf-8")  # noqa: SIM115
        sink = open(output, "w", encoding="utf-8") if output else self.stdout  # noqa: SIM115
        count = 0
        try:
            with request_context.bind(request_id_value="predict-command"):
                batch: list[dict] = []
                for number, line in enumerate(source, start=1):
                    if not line.strip():
                        continue
                    batch.append(self._pair(line, number))
                    if len(batch) == BATCH:
                        count += self._score(version, batch, sink)
                        batch = []
                if batch:
                    count += self._score(version, batch, sink)
        except ArtifactCorrupted as exc:
            raise CommandError(f"{version.ref}: {exc}") from exc
        finally:
            if source is not sys.stdin:
                source.close()
            if output:
                sink.close()
        self.stderr.write(f"{count} pair(s) scored with {version.ref}")

    @staticmethod
    def _pair(line: str, number: int) -> dict:
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise CommandError(f"line {number}: not JSON ({exc})") from exc
        if not isinstance(row, dict):
            raise CommandError(f"line {number}: must be a JSON object")
        for name in ("prompt", "response_a", "response_b"):
            if not isinstance(row.get(name), str):
                raise CommandError(f"line {number}: {name} must be a string")
        return {k: row[k] for k in ("prompt", "response_a", "response_b")} | {
            "item_ref": str(row.get("item_ref", ""))
        }

    @staticmethod
    def _score(version, batch: list[dict], sink) -> int:
        results = services.predictions_create(version=version, pairs=batch, source="command")
        for result in results:
            sink.write(json.dumps(result) + "\n")
        return len(results)
