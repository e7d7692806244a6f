from django.core.management.base import BaseCommand

from governance.services import audit_checkpoint_write


class Command(BaseCommand):
    help = "Write a signed checkpoint of the audit chain head to AUDIT_CHECKPOINT_DIR."

    def handle(self, *args, **options):
        path = audit_checkpoint_write()
        if path is None:
            self.stdout.write("the audit chain is empty: no checkpoint written")
        else:
            self.stdout.write(self.style.SUCCESS(f"checkpoint: {path}"))
