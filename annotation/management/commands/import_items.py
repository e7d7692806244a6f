from django.core.management.base import BaseCommand, CommandError

from annotation.errors import ItemImportError
from annotation.models import Project
from annotation.services import items_import
from rlhf_platform import request_context


class Command(BaseCommand):
    help = (
        "Stream a file of items into a project (JSONL, CSV, TRL, Label Studio, Argilla); "
        "all-or-nothing, for files of any size."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", type=int, help="project id")
        parser.add_argument("path", help="file to import")
        parser.add_argument(
            "--format",
            default="auto",
            choices=["auto", "jsonl", "csv", "trl", "label_studio", "argilla"],
        )

    def handle(self, *args, **options):
        project = Project.objects.filter(pk=options["project"]).first()
        if project is None:
            raise CommandError(f"no project {options['project']}")
        try:
            with (
                open(options["path"], "rb") as handle,
                request_context.bind(request_id_value="cli-import"),
            ):
                result = items_import(project=project, file=handle, fmt=options["format"])
        except ItemImportError as exc:
            for error in exc.errors[:50]:
                self.stderr.write(f"line {error.line}: {error.reason}")
            raise CommandError(str(exc)) from exc
        except OSError as exc:
            raise CommandError(str(exc)) from exc
        summary = f"{result.rows} rows: {result.created} created, "
        summary += f"{result.skipped_existing} already present"
        self.stdout.write(self.style.SUCCESS(summary))
