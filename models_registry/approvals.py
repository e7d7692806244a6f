"""The registry's governed changes: promoting a version to an alias, rolling an alias back
to a version it named before, and revoking an alias.  Registered with governance's
approvals from ``ModelsRegistryConfig.ready()``; governance calls back here to validate,
describe, gate, show the evidence of and — once approved — carry out each request.

Aliases move only this way: the API and the admin refuse a direct move (audited).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from annotation import selectors as annotation_selectors
from governance.approvals import EvidenceSection, Gate, GateMeasure, approval_kind_register

from . import selectors, services
from .models import NAME_VALIDATOR, AliasChange, ModelVersion

PROMOTE = "model.promote"
ROLLBACK = "model.rollback"
REVOKE = "model.revoke"
MODEL_KINDS = (PROMOTE, ROLLBACK, REVOKE)


def _alias_clean(payload: dict) -> str:
    alias = payload.get("alias")
    if not isinstance(alias, str) or not alias.strip():
        raise ValidationError({"payload.alias": ["is required (e.g. production)"]})
    alias = alias.strip()
    try:
        NAME_VALIDATOR(alias)
    except ValidationError as exc:
        raise ValidationError({"payload.alias": exc.messages}) from exc
    return alias


def _current(version: ModelVersion, alias: str) -> ModelVersion | None:
    return selectors.alias_version(registered_model=version.registered_model, alias=alias)


def _promote_validate(version: ModelVersion, payload: dict) -> dict:
    alias = _alias_clean(payload)
    current = _current(version, alias)
    if current is not None and current.pk == version.pk:
        raise ValidationError({"payload.alias": [f"{alias} already names {version.ref}"]})
    return {"alias": alias}


def _rollback_validate(version: ModelVersion, payload: dict) -> dict:
    alias = _alias_clean(payload)
    current = _current(version, alias)
    if current is None:
        raise ValidationError({"payload.alias": [f"{alias} names no version: promote instead"]})
    if current.pk == version.pk:
        raise ValidationError({"payload.alias": [f"{alias} already names {version.ref}"]})
    named_before = AliasChange.objects.filter(
        registered_model=version.registered_model, alias=alias, to_version=version
    ).exists()
    if not named_before:
        raise ValidationError(
            {
                "subject": [
                    f"{alias} never named {version.ref}: a rollback returns to a version it named"
                ]
            }
        )
    return {"alias": alias}


def _revoke_validate(version: ModelVersion, payload: dict) -> dict:
    alias = _alias_clean(payload)
    current = _current(version, alias)
    if current is None or current.pk != version.pk:
        raise ValidationError({"payload.alias": [f"{alias} does not name {version.ref}"]})
    return {"alias": alias}


def _move(version: ModelVersion, payload: dict, request) -> dict:
    """Carry out a promotion or rollback: the registry's alias service (history, audit)."""
    before = _current(version, payload["alias"])
    services.model_alias_set(
        registered_model=version.registered_model, alias=payload["alias"], version=version,
        user=request.requested_by, reason=f"approval request #{request.pk}",
    )  # fmt: skip
    return {"alias": payload["alias"], "from": before.ref if before else None, "to": version.ref}


def _revoke(version: ModelVersion, payload: dict, request) -> dict:
    if (current := _current(version, payload["alias"])) is None or current.pk != version.pk:
        raise ValidationError({"payload.alias": ["has moved since the request was opened"]})
    services.model_alias_remove(
        registered_model=version.registered_model, alias=payload["alias"],
        user=request.requested_by, reason=f"approval request #{request.pk}",
    )  # fmt: skip
    return {"alias": payload["alias"], "removed": version.ref}


# -- gates ----------------------------------------------------------------------------------


def heldout_accuracy(version: ModelVersion, payload: dict) -> GateMeasure:
    value = version.metrics.get("heldout_accuracy")
    pairs = version.metrics.get("heldout_pairs")
    return GateMeasure(
        value=float(value) if value is not None else None,
        detail=f"on {pairs} held-out pairs" if pairs else "no held-out evaluation stored",
    )


def calibrated_ece(version: ModelVersion, payload: dict) -> GateMeasure:
    after = (version.calibration or {}).get("after") or {}
    value = after.get("ece")
    return GateMeasure(
        value=float(value) if value is not None else None,
        detail=(
            f"after {version.calibration.get('method')} scaling"
            if value is not None
            else "no calibration stored"
        ),
    )


def snapshot_alpha(version: ModelVersion, payload: dict) -> GateMeasure:
    lineage = annotation_selectors.snapshot_lineage(snapshot=version.snapshot)
    agreement = lineage.get("agreement") or {}
    value = (agreement.get("metrics") or {}).get("alpha_nominal")
    if value is None:
        return GateMeasure(value=None, detail="agreement was not computed for the snapshot")
    return GateMeasure(
        value=float(value),
        detail=f"Krippendorff's α (nominal) over {agreement.get('n_annotations')} annotations "
        f"of snapshot #{version.snapshot_id}",
    )


def model_card_present(version: ModelVersion, payload: dict) -> GateMeasure:
    """The version has a model card whose intended use and limitations are written."""
    check = selectors.model_card_gate_check(version=version)
    return GateMeasure(value=check["value"], detail=check["detail"], passed=check["passed"])


GATES = [
    Gate(key="heldout_accuracy", label="Held-out accuracy", measure=heldout_accuracy,
         comparator=">=", default_threshold=0.6),
    Gate(key="calibrated_ece", label="Calibration error (ECE) after calibration",
         measure=calibrated_ece, comparator="<=", default_threshold=0.1),
    Gate(key="snapshot_alpha", label="Annotator agreement (α) of the training data",
         measure=snapshot_alpha, comparator=">=", default_threshold=0.4),
    Gate(key="model_card", label="Model card written (intended use and limitations)",
         measure=model_card_present),
]  # fmt: skip


# -- evidence -------------------------------------------------------------------------------


def parent_version(version: ModelVersion, alias: str) -> ModelVersion | None:
    """What the candidate is compared with: the version the alias names now, else the
    version numbered just before it."""
    current = _current(version, alias)
    if current is not None and current.pk != version.pk:
        return current
    return (
        ModelVersion.objects.filter(
            registered_model=version.registered_model, number__lt=version.number
        )
        .order_by("-number")
        .first()
    )


def _change_context(version: ModelVersion, payload: dict) -> dict[str, Any]:
    alias = payload.get("alias", "")
    history = [
        change
        for change in selectors.alias_history(registered_model=version.registered_model, limit=50)
        if change.alias == alias
    ][:5]
    return {"version": version, "alias": alias, "current": _current(version, alias),
            "history": history}  # fmt: skip


def _metrics_context(version: ModelVersion, payload: dict) -> dict[str, Any]:
    parent = parent_version(version, payload.get("alias", ""))
    versions = [parent, version] if parent is not None else [version]
    comparison = selectors.version_compare(versions=versions)
    return {"version": version, "parent": parent, "comparison": comparison}


def _calibration_context(version: ModelVersion, payload: dict) -> dict[str, Any]:
    calibration = version.calibration or {}
    return {
        "version": version,
        "calibration": calibration,
        "chart": {
            "before": (calibration.get("before") or {}).get("reliability"),
            "after": (calibration.get("after") or {}).get("reliability"),
        },
    }


def _lineage_context(version: ModelVersion, payload: dict) -> dict[str, Any]:
    lineage = selectors.version_lineage(version=version)
    return {"version": version, "lineage": lineage,
            "agreement": (lineage["snapshot"].get("agreement") or {})}  # fmt: skip


def _card_context(version: ModelVersion, payload: dict) -> dict[str, Any]:
    return {"version": version, "card": selectors.model_card_current(version=version)}


def _evidence(*, with_metrics: bool = True) -> list[EvidenceSection]:
    sections = [
        EvidenceSection(key="change", title="What changes",
                        template="models_registry/evidence/change.html", context=_change_context),
    ]  # fmt: skip
    if with_metrics:
        sections += [
            EvidenceSection(key="metrics", title="Quality compared with the version it replaces",
                            template="models_registry/evidence/metrics.html",
                            context=_metrics_context),
            EvidenceSection(key="calibration", title="Calibration: can its odds be trusted?",
                            template="models_registry/evidence/calibration.html",
                            context=_calibration_context, charts=True),
        ]  # fmt: skip
    sections.append(
        EvidenceSection(key="lineage", title="Where it came from: data and annotators",
                        template="models_registry/evidence/lineage.html", context=_lineage_context)
    )  # fmt: skip
    sections.append(
        EvidenceSection(key="card", title="Model card: intended use and limitations",
                        template="models_registry/evidence/card.html", context=_card_context)
    )  # fmt: skip
    return sections


def _describe_promote(version: ModelVersion, payload: dict) -> str:
    return f"Promote {version.ref} to {version.registered_model.name}:{payload['alias']}"


def _describe_rollback(version: ModelVersion, payload: dict) -> str:
    return f"Roll {version.registered_model.name}:{payload['alias']} back to {version.ref}"


def _describe_revoke(version: ModelVersion, payload: dict) -> str:
    name = version.registered_model.name
    return f"Remove the alias {name}:{payload['alias']} (it names {version.ref})"


def _project(version: ModelVersion):
    return version.snapshot.project


def _registered_model(version: ModelVersion):
    return version.registered_model


def approvals_register() -> None:
    """Register promotion, rollback and revocation of aliases with governance."""
    common = {"model": ModelVersion, "project_of": _project, "request_object": _registered_model}
    approval_kind_register(
        key=PROMOTE, label="Promote a model version to an alias", validate=_promote_validate,
        describe=_describe_promote, execute=_move, evidence=_evidence(), gates=list(GATES),
        **common,
    )  # fmt: skip
    approval_kind_register(
        key=ROLLBACK, label="Roll an alias back to an earlier version",
        validate=_rollback_validate, describe=_describe_rollback, execute=_move,
        evidence=_evidence(), gates=list(GATES), **common,
    )  # fmt: skip
    approval_kind_register(
        key=REVOKE, label="Revoke an alias", validate=_revoke_validate,
        describe=_describe_revoke, execute=_revoke, evidence=_evidence(with_metrics=False),
        **common,
    )  # fmt: skip


def refuse_direct_alias_move(*, registered_model, channel: str, alias=None, version=None) -> str:
    """Audit a refused direct alias move (API, admin) and return the answer's message."""
    from governance.services import approval_bypass_refuse

    detail = {
        "registered_model": registered_model.name if registered_model is not None else None,
        "alias": alias if isinstance(alias, str) else None,
        "version": version if isinstance(version, int | str) else None,
    }
    return approval_bypass_refuse(
        kind=PROMOTE, obj=registered_model, channel=channel, detail=detail
    )
