"""Roles and their model permissions: the one place that declares who may do what.

Roles are Django groups (created by migration ``governance.0002_roles``).  Their model
permissions are declared here and applied after every ``migrate`` by
:func:`roles_sync`, so adding a permission is a one-line change in this file.
Per-object access (e.g. membership of one annotation project) is granted with
django-guardian on top of these model permissions; see ``governance.access``.
"""

from __future__ import annotations

import logging

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions

logger = logging.getLogger(__name__)

ADMIN = "admin"
RESEARCHER = "researcher"
ANNOTATOR = "annotator"
REVIEWER = "reviewer"
ETHICS_COMMITTEE = "ethics_committee"
VIEWER = "viewer"

ROLES: dict[str, str] = {
    ADMIN: "Administers users, roles, object permissions, webhooks and system health.",
    RESEARCHER: "Creates projects, imports items, exports datasets, trains and compares models.",
    ANNOTATOR: "Labels items in the projects they are members of.",
    REVIEWER: "Adjudicates disagreements and watches annotator quality.",
    ETHICS_COMMITTEE: "Reviews promotion requests with their evidence and reads the audit trail.",
    VIEWER: "Reads dashboards and results, changes nothing.",
}

ALL = "__all__"

# Model permissions per role, as "app_label.codename".  Permissions of models that do not
# exist (yet) are an error: a typo here must not silently grant nothing.
ROLE_PERMISSIONS: dict[str, list[str] | str] = {
    ADMIN: ALL,
    RESEARCHER: [
        "annotation.add_project",
        # Models: train, predict, register and move aliases; base models are added by admins
        # (they name directories on the server).
        "models_registry.view_basemodel",
        "models_registry.view_registeredmodel",
        "models_registry.add_registeredmodel",
        "models_registry.view_modelversion",
        # Request alias moves (they happen only once a request is approved).
        "models_registry.change_registeredmodel",
        "models_registry.view_modelalias",
        "models_registry.view_aliaschange",
        "models_registry.view_trainingjob",
        "models_registry.add_trainingjob",
        "models_registry.change_trainingjob",
        "models_registry.view_prediction",
        "models_registry.add_prediction",
        # Model cards: researchers write the human-entered text (readers of a version read
        # its card through ``access_parent``).
        "models_registry.add_modelcard",
        "models_registry.change_modelcard",
        # Generation: providers are managed by admins (they hold API keys) and read here to
        # choose one; prompt sets and generation jobs are the researcher's own work.
        "models_registry.view_provider",
        "models_registry.view_promptset",
        "models_registry.add_promptset",
        "models_registry.change_promptset",
        "models_registry.view_prompt",
        "models_registry.view_generationjob",
        "models_registry.add_generationjob",
        "models_registry.change_generationjob",
        "models_registry.view_generatedresponse",
        *[
            f"monitoring.view_{m}"
            for m in (
                "metricpoint",
                "detectorstate",
                "driftreport",
                "alertrule",
                "alert",
                "errorzonerun",
            )
        ],
        # Ask for governed changes (alias moves, releases) and follow them in the queue.
        "governance.view_approvalrequest",
        "governance.add_approvalrequest",
    ],
    ANNOTATOR: [],
    # Reviewers see the approval queue; which requests they decide is the policy's call
    # (the subject project's reviewers, by default).
    REVIEWER: ["governance.view_approvalrequest"],
    ETHICS_COMMITTEE: [
        "governance.view_auditevent",
        "governance.view_approvalrequest",
        # The evidence of promotion requests: versions, their metrics and alias history.
        "models_registry.view_registeredmodel",
        "models_registry.view_modelversion",
        "models_registry.view_modelalias",
        "models_registry.view_aliaschange",
    ],
    # Viewers read the monitoring dashboards (metric points, detectors, drift, alerts).
    VIEWER: [
        f"monitoring.view_{m}"
        for m in (
            "metricpoint",
            "detectorstate",
            "driftreport",
            "alertrule",
            "alert",
            "errorzonerun",
        )
    ],
}


def roles_sync(*, apps=global_apps) -> None:
    """Give each role group exactly the permissions declared for it."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, declared in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        if declared == ALL:
            perms = list(Permission.objects.all())
        else:
            perms = []
            for name in declared:
                app_label, codename = name.split(".", 1)
                perm = Permission.objects.filter(
                    content_type__app_label=app_label, codename=codename
                ).first()
                if perm is None:
                    raise LookupError(
                        f"roles: permission {name!r} for role {role!r} does not exist"
                    )
                perms.append(perm)
        group.permissions.set(perms)


def roles_sync_after_migrate(sender, **kwargs) -> None:
    """post_migrate hook: once per migrate, after governance's own signal."""
    if sender.name != "governance":
        return
    using = kwargs.get("using", "default")
    # Permissions of apps listed after governance are created by their own post_migrate
    # signal, which has not run yet: create them all now (idempotent).
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)
    from .security_audit import silenced

    # Off the audit trail: the declaration is code, reviewed and versioned in this file,
    # and applying it on every migrate is nobody's action.
    with silenced():
        roles_sync()
