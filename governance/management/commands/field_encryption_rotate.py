from django.core.management.base import BaseCommand

from rlhf_platform.crypto import field_encryption_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted field under the first FIELD_ENCRYPTION_KEYS key; run it "
        "after putting a new key first, before removing the old one."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, **options):
        counts = field_encryption_rotate(batch_size=options["batch_size"])
        for label, count in counts.items():
            self.stdout.write(f"{label}: {count} re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"done ({sum(counts.values())} values)"))
