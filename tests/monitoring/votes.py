"""Seeded vote histories for the preference and annotator-drift tests: a pairwise project
whose annotators vote day after day on items with a hidden truth, each with an accuracy
and a typical time per vote that may change from some day on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from annotation import consensus
from annotation import services as annotation_services
from annotation.models import Annotation, Assignment, Item
from monitoring import services as monitoring_services
from tests.factories import UserFactory
from tests.monitoring.conftest import T0, outcomes_make


@dataclass
class Voter:
    """An annotator's behaviour: accuracy and median ms per vote, before and from ``day``."""

    username: str
    accuracy: float = 0.9
    lead_ms: float = 8000.0
    day: int | None = None
    accuracy_after: float | None = None
    lead_ms_after: float | None = None

    def at(self, day: int) -> tuple[float, float]:
        if self.day is not None and day >= self.day:
            return (self.accuracy_after or self.accuracy, self.lead_ms_after or self.lead_ms)
        return self.accuracy, self.lead_ms


def history_make(*, researcher, voters: list[Voter], days: int, items_per_day: int, seed: int = 0,
                 share_a: float = 0.6, share_a_after: tuple[int, float] | None = None):  # fmt: skip
    """A project where every voter answers every item of each day (votes A/B; a wrong
    vote flips the truth), with consensus recomputed at the end.  Returns the project."""
    rng = np.random.default_rng(seed)
    project = annotation_services.project_create(
        created_by=researcher, name=f"Votes {seed}", overlap=len(voters)
    )
    users = [UserFactory(username=v.username, roles=["annotator"]) for v in voters]
    rows = [
        {"external_id": f"d{d}-{i}", "prompt": f"Q{d}.{i}?", "responses": ["one", "two"]}
        for d in range(days)
        for i in range(items_per_day)
    ]
    annotation_services.items_create_bulk(project=project, rows=rows)
    items = {i.external_id: i for i in Item.objects.filter(project=project)}
    for day in range(days):
        when = T0 + timedelta(days=day, hours=2)
        p_a = share_a_after[1] if share_a_after and day >= share_a_after[0] else share_a
        assignments, votes = [], []
        for i in range(items_per_day):
            item = items[f"d{day}-{i}"]
            truth = 0 if rng.random() < p_a else 2  # A or B
            for voter, user in zip(voters, users, strict=True):
                accuracy, lead = voter.at(day)
                label = truth if rng.random() < accuracy else 2 - truth
                assignment = Assignment(project=project, item=item, annotator=user, status="submitted",
                                        locked_at=when, expires_at=when + timedelta(hours=1))  # fmt: skip
                assignments.append(assignment)
                votes.append(
                    Annotation(
                        project=project, item=item, annotator=user, assignment=assignment,
                        answer={"preference": {"choice": "AtB"[label]}}, label=label,
                        lead_time_ms=int(lead * rng.lognormal(0, 0.3)),
                        idempotency_key=f"{user.pk}-{item.pk}",
                    )
                )  # fmt: skip
        Assignment.objects.bulk_create(assignments)
        for vote in votes:
            vote.assignment_id = vote.assignment.pk
        created = Annotation.objects.bulk_create(votes)
        Annotation.objects.filter(pk__in=[v.pk for v in created]).update(created_at=when)
    consensus.consensus_recompute(project=project)
    return project, dict(zip([v.username for v in voters], users, strict=True))


def outcomes_day_make(*, version, day: int, correct: int) -> None:
    """Ten outcomes on day ``day`` after T0, ``correct`` of them right, and the points."""
    at = T0 + timedelta(days=day)
    labels = [1] * correct + [0] * (10 - correct)
    outcomes_make(version=version, probs=[0.8] * 10, labels=labels, at=at)
    monitoring_services.metric_points_update(version=version, times=[at])
