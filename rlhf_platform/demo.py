"""The demo workspace that ``make run`` loads: demo users for every role, the demo
annotation project, a reward model the worker trains on its labels, and that model's
promotion to ``production`` through an approved request.  Idempotent: running it again
changes nothing."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from governance import roles
from governance.services import user_create


@dataclasses.dataclass(frozen=True)
class DemoUser:
    """A demo login; the passwords are public by design (demo only)."""

    username: str
    password: str
    roles: tuple[str, ...]
    is_staff: bool = False
    is_superuser: bool = False


DEMO_USERS = (
    DemoUser("admin", "attune-admin", (roles.ADMIN,), is_staff=True, is_superuser=True),
    DemoUser("researcher", "attune-researcher", (roles.RESEARCHER,)),
    DemoUser("annotator", "attune-annotator", (roles.ANNOTATOR,)),
    DemoUser("annotator2", "attune-annotator2", (roles.ANNOTATOR,)),
    DemoUser("annotator3", "attune-annotator3", (roles.ANNOTATOR,)),
    DemoUser("reviewer", "attune-reviewer", (roles.REVIEWER,)),
    DemoUser("ethics", "attune-ethics", (roles.ETHICS_COMMITTEE,)),
    DemoUser("viewer", "attune-viewer", (roles.VIEWER,)),
)


DEMO_PROJECT = "Polite or rude? (demo)"
DEMO_DATA = Path(__file__).resolve().parent / "demo_data" / "demo-preferences.jsonl"
DEMO_GUIDELINES = """\
Two assistants answered the same instruction. **Choose the better response.**

- Prefer the response that is correct *and* polite.
- Choose **tie** only when neither is better.
- Use strength 3 when one response is clearly better, 1 when it is a close call.

Keys: `1` A, `2` B, `3` tie, `s` skip, `?` help, `Enter` submit.
"""


def _demo_project(users: dict[str, object]) -> None:
    """The demo project: real preference pairs, three annotators, a reviewer, a viewer.

    Two of the demo annotators have already labelled the first items (mostly agreeing
    with the source preference, sometimes not), so the reviewer's disagreement queue and
    the dashboard have data from the first minute.
    """
    from annotation import services
    from annotation.consensus import consensus_recompute
    from annotation.models import Assignment, Project

    if Project.objects.filter(name=DEMO_PROJECT).exists():
        return
    project = services.project_create(
        created_by=users["researcher"], name=DEMO_PROJECT, guidelines=DEMO_GUIDELINES, overlap=3
    )
    for username in ("annotator", "annotator2", "annotator3"):
        services.project_member_add(project=project, user=users[username], role="annotator")
    services.project_member_add(project=project, user=users["reviewer"], role="reviewer")
    services.project_member_add(project=project, user=users["viewer"], role="viewer")
    with DEMO_DATA.open("rb") as handle:
        services.items_import(project=project, file=handle, fmt="trl")
    rng = random.Random(2026)
    for username, accuracy in (("annotator2", 0.9), ("annotator3", 0.7)):
        for _ in range(40):
            assignment = services.assignment_next(project=project, annotator=users[username])
            if assignment is None:
                break
            # They read before answering: backdate the lock so lead times look human.
            Assignment.objects.filter(pk=assignment.pk).update(
                locked_at=timezone.now() - timedelta(seconds=rng.uniform(6, 25))
            )
            truth = assignment.item.metadata.get("source_preference", "A")
            choice = truth if rng.random() < accuracy else ("B" if truth == "A" else "A")
            services.annotation_submit(
                project=project,
                item_id=assignment.item_id,
                annotator=users[username],
                answer={"preference": {"choice": choice, "strength": rng.choice([1, 2, 3])}},
                idempotency_key=f"demo-{username}-{assignment.item_id}",
            )
    consensus_recompute(project=project)


DEMO_MODEL = "demo-reward"
# Small and quick: the worker trains it in seconds after `make run` starts, and demo_setup
# itself imports no torch (it only queues the job).
DEMO_TRAINING = {"epochs": 6, "learning_rate": 2e-4, "batch_size": 8, "max_length": 128,
                 "eval_fraction": 0.25, "logging_steps": 1}  # fmt: skip

# The demo model's card text: what a researcher writes; the rest of the card is computed.
DEMO_CARD = {
    "intended_use": (
        "A demonstration reward model: it scores which of two assistant responses to an "
        "instruction is the more polite one. Use it to explore Attune — training, "
        "calibration, monitoring and governance — not to rank real assistants."
    ),
    "out_of_scope_use": (
        "Judging helpfulness, truthfulness or safety; any decision about people; "
        "languages other than English."
    ),
    "limitations": (
        "Trained for a few epochs on about 1,100 short, benign English pairs where the "
        "rejected answer is obviously rude, so it learns tone rather than quality. Its "
        "accuracy on real human preferences (e.g. HH-RLHF) is near chance."
    ),
    "ethical_considerations": (
        "Politeness norms differ between cultures; a model of one norm should not police "
        "others. The demo data is public (Apache-2.0) and contains no personal data."
    ),
    "training_data_notes": (
        "Instruction/response pairs from the LLMs-from-scratch book repository (Apache-2.0), "
        "labelled in the demo project by three demo annotators."
    ),
}


def _demo_card_fill(users: dict[str, object]) -> None:
    """Give the demo model's latest version the demo card text if it has none (a workspace
    whose model was trained before cards existed)."""
    from models_registry import services as models_services
    from models_registry.models import ModelVersion

    version = ModelVersion.objects.filter(registered_model__name=DEMO_MODEL).first()
    card = getattr(version, "card", None) if version else None
    if version is not None and (card is None or not card.intended_use):
        models_services.model_card_update(
            version=version, user=users["researcher"], fields=DEMO_CARD, note="demo card"
        )


def _demo_model(users: dict[str, object]) -> None:
    """The demo's model: all-MiniLM-L6-v2 registered as a base model, a TRL snapshot of the
    demo project's labels, and a reward-model training job queued on it for the worker."""
    from annotation.exports import dataset_export
    from annotation.models import DatasetSnapshot, Project
    from models_registry import services as models_services
    from models_registry.models import TrainingJob

    minilm = models_services.base_model_minilm_ensure(user=users["admin"])
    if TrainingJob.objects.filter(registered_model__name=DEMO_MODEL).exists():
        _demo_card_fill(users)
        return
    project = Project.objects.get(name=DEMO_PROJECT)
    snapshot = DatasetSnapshot.objects.filter(project=project, format="trl").first()
    if snapshot is None:
        snapshot = dataset_export(project=project, fmt="trl", user=users["researcher"])
    models_services.training_job_create(
        user=users["researcher"], kind="reward", registered_model_name=DEMO_MODEL,
        base_model=minilm, snapshot_id=snapshot.pk, config=DEMO_TRAINING, card=DEMO_CARD,
    )  # fmt: skip


DEMO_PROMOTION_REASON = (
    "The demo reward model, trained on the demo project's labels: make it the production "
    "model so predictions and monitoring have something to watch."
)
DEMO_OVERRIDE_REASON = (
    "Demo only: the demo project has few labels yet (two annotators on about 40 items), so "
    "the quality checks have too little data. Accepted for the walkthrough, not for real use."
)


def demo_promotion() -> str:
    """The demo model's ``production`` alias, through a real approval request: the demo
    researcher asks, the admin and the ethics committee member approve (the admin, who
    holds the gate-override role, overrides the checks the small demo data fails, with a
    rationale).  Returns ``waiting`` (no version yet), ``failed`` (training failed),
    ``opened`` or ``done``; idempotent."""
    from governance import services as governance_services
    from governance.models import ApprovalRequest
    from models_registry.models import ModelVersion, TrainingJob
    from rlhf_platform import request_context

    version = (
        ModelVersion.objects.filter(registered_model__name=DEMO_MODEL).order_by("number").first()
    )
    if version is None:
        jobs = TrainingJob.objects.filter(registered_model__name=DEMO_MODEL)
        finished = jobs.exists() and not jobs.exclude(status__in=TrainingJob.FINISHED).exists()
        return "failed" if finished else "waiting"
    if ApprovalRequest.objects.filter(kind="model.promote", subject_id=str(version.pk)).exists():
        return "done"
    users = {u.username: u for u in get_user_model().objects.filter(
        username__in=("researcher", "admin", "ethics"))}  # fmt: skip
    with transaction.atomic():
        with request_context.bind(request_id_value="demo-promotion", user=users["researcher"]):
            request = governance_services.approval_request_open(
                kind="model.promote", subject=version, payload={"alias": "production"},
                requested_by=users["researcher"], justification=DEMO_PROMOTION_REASON,
            )  # fmt: skip
        failing = request.gates.filter(passed=False).exists()
        override = DEMO_OVERRIDE_REASON if failing else ""
        for username in ("admin", "ethics"):
            with request_context.bind(request_id_value="demo-promotion", user=users[username]):
                governance_services.approval_request_decide(
                    request=request, reviewer=users[username], verdict="approve",
                    rationale="Demo walkthrough: evidence read on the request page.",
                    override_rationale=override if username == "admin" else "",
                )  # fmt: skip
    return "done"


def _demo_promotion_schedule() -> None:
    """Promote now if the demo model is trained, else ask a worker to try shortly (the
    worker trains it within a minute of ``make run``)."""
    from governance.outbox import outbox_task_enqueue

    if demo_promotion() == "waiting":
        outbox_task_enqueue(
            task="governance.demo_promote", kwargs={"attempt": 0}, delay=20,
            dedupe_key="demo-promote",
        )  # fmt: skip


@transaction.atomic
def demo_workspace_load() -> list[DemoUser]:
    """Create the demo users and the demo project if they do not exist; return the logins."""
    User = get_user_model()
    existing = set(
        User.objects.filter(username__in=[u.username for u in DEMO_USERS]).values_list(
            "username", flat=True
        )
    )
    for demo in DEMO_USERS:
        if demo.username in existing:
            continue
        user_create(
            username=demo.username,
            password=demo.password,
            roles=list(demo.roles),
            is_staff=demo.is_staff,
            is_superuser=demo.is_superuser,
        )
    users = {
        u.username: u for u in User.objects.filter(username__in=[d.username for d in DEMO_USERS])
    }
    _demo_project(users)
    _demo_model(users)
    _demo_promotion_schedule()
    return list(DEMO_USERS)
