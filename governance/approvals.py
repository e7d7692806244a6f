"""The registry of approval kinds and gate providers: how other apps plug into approvals.

Governance knows nothing of models, snapshots or alert rules.  Each app that has a governed
change registers it from its ``AppConfig.ready()``:

    approval_kind_register(
        key="model.promote", label="Promote a model version to an alias",
        model=RegisteredModel, validate=..., execute=..., describe=..., project_of=...,
        evidence=[EvidenceSection(...)], gates=[Gate(...)],
    )

and apps that can judge a subject of another app's kind add gates to it with
:func:`gate_register` (monitoring adds "no firing critical alert" to the model kinds).
``governance.services`` opens, decides and executes requests through these callbacks only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from django.db.models import Model


@dataclasses.dataclass(frozen=True)
class GateMeasure:
    """What a gate provider measured: a value (None when not measured) and a plain note.

    Boolean gates (e.g. "no firing critical alert") set ``passed`` themselves and report
    the count they judged as ``value``.
    """

    value: float | None
    detail: str = ""
    passed: bool | None = None


@dataclasses.dataclass(frozen=True)
class Gate:
    """An automated check of a request's subject: ``measure(subject, payload)`` compared
    with a threshold (``>=`` or ``<=``; none for boolean gates).  The threshold comes from
    the kind's ``GatePolicy`` (per project, else default), else ``default_threshold``."""

    key: str
    label: str
    measure: Callable[[Model, dict], GateMeasure]
    comparator: str = ""
    default_threshold: float | None = None


@dataclasses.dataclass(frozen=True)
class EvidenceSection:
    """One part of a request's review page: a template and the context it needs
    (``context(subject, payload)`` returns a dict; it is rendered inside a card)."""

    key: str
    title: str
    template: str
    context: Callable[[Model, dict], dict[str, Any]]
    #: The section draws the reliability plot (the page loads plotly and the chart script).
    charts: bool = False


def _no_project(subject: Model) -> Model | None:
    return None


def _whole_payload(subject: Model, payload: dict) -> dict:
    return dict(payload)


def _title(subject: Model, payload: dict) -> str:
    return str(subject)


@dataclasses.dataclass
class ApprovalKind:
    """A kind of governed change and how its app carries it out.

    - ``model``: the subject's model; ``subject_get(value)`` finds it (default: by pk).
    - ``validate(subject, payload)``: the cleaned payload, or ``ValidationError`` naming
      ``payload.<field>``.
    - ``describe(subject, payload)``: a plain-language title for the queue.
    - ``project_of(subject)``: the annotation project whose reviewers review and whose
      policy overrides apply (None: none).
    - ``request_object(subject)``: the object the requester must be allowed
      ``request_action`` on (``governance.access``); default the subject itself — e.g.
      ``change`` on a version's registered model.
    - ``execute(subject, payload, request)``: carries the approved change out (through the
      owning app's services) and returns a JSON-able summary.
    """

    key: str
    label: str
    model: type[Model]
    execute: Callable[[Model, dict, Any], dict]
    validate: Callable[[Model, dict], dict] = _whole_payload
    describe: Callable[[Model, dict], str] = _title
    project_of: Callable[[Model], Model | None] = _no_project
    request_action: str = "change"
    request_object: Callable[[Model], Model] = lambda subject: subject
    subject_get: Callable[[str], Model | None] | None = None
    evidence: list[EvidenceSection] = dataclasses.field(default_factory=list)
    gates: list[Gate] = dataclasses.field(default_factory=list)

    def subject_find(self, value: str | int) -> Model | None:
        """The subject named by ``value`` (an id, or what ``subject_get`` understands)."""
        if self.subject_get is not None:
            return self.subject_get(str(value))
        text = str(value).strip()
        if not text.isdigit() or len(text) > 18:
            return None
        return self.model._default_manager.filter(pk=int(text)).first()


_KINDS: dict[str, ApprovalKind] = {}


def approval_kind_register(**fields: Any) -> ApprovalKind:
    """Register (or replace, e.g. on autoreload) one kind of approval request."""
    gates = list(fields.pop("gates", []))
    evidence = list(fields.pop("evidence", []))
    previous = _KINDS.get(fields["key"])
    kind = ApprovalKind(**fields, gates=gates, evidence=evidence)
    if previous is not None:  # what other apps added before this registration stays
        kind.gates.extend(g for g in previous.gates if g.key not in {x.key for x in gates})
        kind.evidence.extend(e for e in previous.evidence if e.key not in {x.key for x in evidence})
    _KINDS[kind.key] = kind
    return kind


def _placeholder(kind: str) -> ApprovalKind:
    """The kind ``kind``, or a placeholder for it: the kind's app may be ready later than
    the app adding a gate or a section to it."""
    if kind not in _KINDS:
        _KINDS[kind] = ApprovalKind(key=kind, label=kind, model=Model, execute=lambda *a: {})
    return _KINDS[kind]


def gate_register(*, kind: str, gate: Gate) -> None:
    """Add a gate provider to a kind (registered now or later); same key replaces."""
    target = _placeholder(kind)
    target.gates = [g for g in target.gates if g.key != gate.key] + [gate]


def evidence_register(*, kind: str, section: EvidenceSection) -> None:
    """Add an evidence section to a kind's review page (same key replaces)."""
    target = _placeholder(kind)
    target.evidence = [s for s in target.evidence if s.key != section.key] + [section]


def approval_kind(key: str) -> ApprovalKind:
    """The registered kind ``key``; LookupError when no app registered it."""
    kind = _KINDS.get(key)
    if kind is None or kind.model is Model:
        raise LookupError(f"no such kind of approval request: {key!r}")
    return kind


def approval_kinds() -> list[ApprovalKind]:
    """Every registered kind, by key."""
    return [k for _, k in sorted(_KINDS.items()) if k.model is not Model]


# -- Governance's own kind: changing a gate policy ------------------------------------------

GATE_POLICY_CHANGE = "gate_policy.change"


def _gate_policy_get(value: str) -> Model | None:
    """``<kind>/<gate>`` or ``<kind>/<gate>/<project id>``: the gate's policy row, made
    (audited, with the provider's default threshold) when the gate has none yet."""
    from .services import gate_policy_ensure

    parts = value.strip().split("/")
    if len(parts) not in (2, 3):
        return None
    if len(parts) == 3 and not (parts[2].isdigit() and len(parts[2]) <= 18):
        return None
    kind = _KINDS.get(parts[0])
    gate = next((g for g in kind.gates if g.key == parts[1]), None) if kind else None
    if gate is None:
        return None
    project_id = int(parts[2]) if len(parts) == 3 else None
    return gate_policy_ensure(kind=kind.key, gate=gate, project_id=project_id)


def _gate_policy_validate(subject, payload: dict) -> dict:
    from django.core.exceptions import ValidationError

    threshold = payload.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int | float)
    ):
        raise ValidationError({"payload.threshold": ["must be a number or null"]})
    enabled = payload.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ValidationError({"payload.enabled": ["must be true or false"]})
    if threshold == subject.threshold and enabled == subject.enabled:
        raise ValidationError({"payload": ["changes nothing"]})
    return {"threshold": threshold, "enabled": enabled}


def _gate_policy_describe(subject, payload: dict) -> str:
    scope = f" in project {subject.project_id}" if subject.project_id else ""
    if not payload["enabled"]:
        return f"Turn off the gate “{subject.gate}” of {subject.kind}{scope}"
    return (
        f"Set the gate “{subject.gate}” of {subject.kind}{scope} to {payload['threshold']} "
        f"(now {subject.threshold})"
    )


def _gate_policy_execute(subject, payload: dict, request) -> dict:
    from .services import gate_policy_set

    row = gate_policy_set(
        kind=subject.kind, gate=subject.gate, project_id=subject.project_id,
        threshold=payload["threshold"], enabled=payload["enabled"],
    )  # fmt: skip
    return {"gate_policy": row.pk, "threshold": row.threshold, "enabled": row.enabled}


def _gate_policy_evidence(subject, payload: dict) -> dict:
    return {"policy": subject, "proposed": payload}


def governance_kinds_register() -> None:
    """Governance's own governed change: a gate's threshold (or turning a gate off)."""
    from .models import GatePolicy

    approval_kind_register(
        key=GATE_POLICY_CHANGE,
        label="Change a gate policy",
        model=GatePolicy,
        subject_get=_gate_policy_get,
        validate=_gate_policy_validate,
        describe=_gate_policy_describe,
        execute=_gate_policy_execute,
        evidence=[
            EvidenceSection(
                key="gate-policy",
                title="The gate and the proposed change",
                template="governance/evidence/gate_policy.html",
                context=_gate_policy_evidence,
            )
        ],
    )
