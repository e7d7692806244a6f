from django.core.management.base import BaseCommand, CommandError

from governance.selectors import audit_chain_verify


class Command(BaseCommand):
    help = (
        "Verify the whole audit chain (HMAC, links, archive anchors, signed checkpoints); "
        "exit non-zero naming the first bad event and why."
    )

    def handle(self, *args, **options):
        report = audit_chain_verify()
        if not report.ok:
            brk = report.first_break
            row = f" (id={brk.event_id})" if brk.event_id is not None else ""
            raise CommandError(
                f"audit chain BROKEN at event sequence={brk.sequence}{row}: {brk.reason}"
            )
        legacy = f", {report.legacy} of them unsigned (sealed legacy)" if report.legacy else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"audit chain OK: {report.checked} events verified{legacy}; head sequence "
                f"{report.head_sequence}; {report.checkpoints} signed checkpoint(s) agree"
            )
        )
        if not report.checkpoints:
            self.stdout.write(
                self.style.WARNING(
                    "no signed checkpoint found: deleting the newest events would go unnoticed "
                    "(run `manage.py audit_checkpoint`, or the beat task, to write one)"
                )
            )
