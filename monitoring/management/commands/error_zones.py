"""``manage.py error_zones VERSION``: search a version's outcomes for error zones now."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from models_registry import selectors as registry_selectors
from monitoring import zones
from monitoring.models import ErrorZoneRun, Window


class Command(BaseCommand):
    help = (
        "Search a version (name@N, name:alias or id) for error zones over the last --days "
        "days: queued for the monitoring workers, or run here with --now."
    )

    def add_arguments(self, parser):
        parser.add_argument("ref")
        parser.add_argument("--method", choices=ErrorZoneRun.Method.values, default="tfidf")
        parser.add_argument("--window", choices=Window.values, default="day")
        parser.add_argument("--days", type=int, default=28)
        parser.add_argument("--now", action="store_true", help="run in this process")

    def handle(self, *args, ref, method, window, days, now, **options):
        version = registry_selectors.version_resolve(ref=ref)
        if version is None:
            raise CommandError(f"no such version: {ref}")
        end = timezone.now()
        run = zones.error_zones_request(
            version=version, start=end - timedelta(days=days), end=end, method=method,
            window=window,
        )  # fmt: skip
        if not now:
            self.stdout.write(f"queued error-zone search #{run.pk} for {version.ref}")
            return
        run = zones.error_zones_run(run_id=run.pk)
        if run.status != ErrorZoneRun.Status.DONE:
            raise CommandError(f"error-zone search #{run.pk} failed: {run.error}")
        for zone in run.zones.all():
            terms = ", ".join(t for t, _ in zone.top_terms[:5])
            self.stdout.write(
                f"zone {zone.index}: {zone.size} disagreements, {zone.n_outcomes} outcomes, "
                f"error rate {zone.error_rate:.3f} — {terms}"
            )
