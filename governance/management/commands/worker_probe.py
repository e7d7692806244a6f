import time
import uuid

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from governance.models import AuditEvent
from governance.tasks import system_probe


class Command(BaseCommand):
    help = "Send a probe task through the broker and wait until a worker has written it."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=30.0)

    def handle(self, *args, **options):
        token = uuid.uuid4().hex
        transaction.on_commit(lambda: system_probe.delay(token))
        started = time.monotonic()
        while time.monotonic() - started < options["timeout"]:
            if AuditEvent.objects.filter(action="system.probe", object_id=token).exists():
                elapsed = time.monotonic() - started
                self.stdout.write(self.style.SUCCESS(f"worker answered in {elapsed:.2f}s"))
                return
            time.sleep(0.2)
        raise CommandError(f"no worker answered within {options['timeout']}s")
