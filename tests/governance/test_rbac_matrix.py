"""The RBAC matrix: every persona × every route of the URL conf × own / other project's
object, each case asserted allowed or refused by its status code.

Routes are enumerated from ``django.urls.get_resolver()`` (HTML pages, the API, the admin),
so a route that is missing from ``ROUTES`` below fails ``test_every_route_is_in_the_matrix``.

Personas (those of tests/conftest.py, created once for the module): ``anonymous``; ``anna``
annotator; ``rex`` reviewer; ``rosa`` researcher; ``vic`` viewer; ``eve`` ethics committee;
``nobody`` (signed in, no role); ``ada`` admin.

Objects: "own" is the project Rosa runs, in which Anna annotates, Rex reviews and Vic views
(with its items, snapshots, import jobs, ...); "other" is Otto's project, where none of
them is a member, so there only Ada gets in, whatever the route (IDOR).  Routes naming a
project *and* an object inside it are also tried as "mixed": one's own project with the
other project's object, which nobody, not even Ada, may reach.  Routes naming no project
object (the audit trail, users, ...) run once ("global"), and so do the admin's pages: the
admin has no per-project rules (staff only), so one object of each model is enough there.

Allowed means the route did its work or answered about the request (2xx, a redirect that
is not to a login page, a 400 for the empty body the matrix sends, 409); refused means
401, 403, 404 or a redirect to a login page.  A 5xx fails every case.  Every request runs
in a savepoint that is rolled back, so cases do not change what later cases see.

**Adding a route**: one line in ``ROUTES`` — the path as the URL conf spells it, with
``<kwarg>`` for each parameter (converters and regexes dropped), each HTTP method it
answers, and who may call it on their own project (one of the audiences below, or persona
names).  A new URL parameter also needs a line in ``World.value``.  Admin pages follow the
``admin/*`` line unless listed before it (first match wins).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.db import models, transaction
from django.shortcuts import resolve_url
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.authtoken.models import Token

from annotation import exports, services
from annotation.consensus import consensus_recompute
from annotation.models import Adjudication, DatasetSnapshot, ImportJob, Item, Project
from governance.models import (
    ApprovalRequest,
    AuditEvent,
    UserPreference,
    WebhookDelivery,
    WebhookSubscription,
    WorkerHeartbeat,
)
from models_registry.models import (
    GenerationJob,
    ModelVersion,
    Prediction,
    PromptSet,
    Provider,
    RegisteredModel,
    TrainingJob,
)
from monitoring.models import Alert, DriftReport
from tests.annotation.conftest import label, pairs
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "anna", "rex", "rosa", "vic", "eve", "nobody", "ada")

# -- Audiences: who may, on their own project ----------------------------------------------
ANYONE = "anonymous anna rex rosa vic eve nobody ada"
SIGNED_IN = "anna rex rosa vic eve nobody ada"
NO_ONE = ""
ADMINS = "ada"
AUDITORS = "ada eve"  # the audit trail: admins and the ethics committee
CREATORS = "ada rosa"  # may create projects (the researcher role)
MEMBERS = "ada rosa rex anna vic"  # any role in the project, viewers included
ANNOTATE = "ada anna"
REVIEW = "ada rosa rex"
REPORT = "ada rosa rex vic"  # agreement and annotator quality
CHANGE = "ada rosa"  # settings, members, items, imports and import jobs
EXPORT = "ada rosa"  # datasets: they hold every annotator's answers and the gold answers
MODEL_READERS = "ada rosa eve"  # registered models, versions, aliases: the promotion evidence
TRAIN = "ada rosa"  # training jobs, base models, predictions, moving aliases
WATCH = "ada rosa vic"  # monitoring: metric points, detectors, drift, alerts
APPROVAL_READERS = "ada rosa rex eve"  # the approval queue: requesters, reviewers, committee
# Deciding the world's open request (Rosa asked): the committee, the reviewer of its
# project, admins; never its requester.
DECIDE = "ada rex eve"

# fmt: off
ROUTES: dict[str, dict[str, str]] = {
    # -- pages ------------------------------------------------------------------------------
    "":                                                    {"GET": SIGNED_IN},
    "healthz":                                             {"GET": ANYONE},
    "preferences/theme/":                                  {"POST": ANYONE},
    "accounts/login/":                                     {"GET": ANYONE, "POST": ANYONE, "PUT": ANYONE},
    "accounts/logout/":                                    {"POST": ANYONE},
    "governance/audit/":                                   {"GET": AUDITORS},
    "governance/approvals/":                               {"GET": APPROVAL_READERS},
    "governance/approvals/<request_id>/":                  {"GET": APPROVAL_READERS, "POST": DECIDE},

    "governance/webhooks/":                                {"GET": ADMINS, "POST": ADMINS},
    "governance/webhooks/<subscription_id>/":              {"GET": ADMINS, "POST": ADMINS},
    "governance/webhooks/<subscription_id>/rotate-secret/": {"POST": ADMINS},
    "governance/webhooks/<subscription_id>/delete/":       {"POST": ADMINS},
    "governance/webhooks/deliveries/<delivery_id>/redeliver/": {"POST": ADMINS},
    "annotation/":                                         {"GET": SIGNED_IN, "POST": CREATORS},
    "annotation/projects/<project_id>/":                   {"GET": MEMBERS},
    "annotation/projects/<project_id>/queue/":             {"GET": ANNOTATE},
    "annotation/projects/<project_id>/label/":             {"GET": ANNOTATE, "POST": ANNOTATE},
    "annotation/projects/<project_id>/skip/":              {"POST": ANNOTATE},
    "annotation/projects/<project_id>/review/":            {"GET": REVIEW},
    "annotation/projects/<project_id>/review/<item_id>/":  {"GET": REVIEW, "POST": REVIEW},
    "annotation/projects/<project_id>/recompute/":         {"GET": REVIEW, "POST": REVIEW},
    "annotation/projects/<project_id>/import/":            {"GET": CHANGE, "POST": CHANGE},
    "annotation/projects/<project_id>/export/":            {"GET": EXPORT, "POST": EXPORT},
    "annotation/projects/<project_id>/data-protection/":   {"GET": CHANGE, "POST": CHANGE},
    "annotation/projects/<project_id>/snapshots/<snapshot_id>/download/": {"GET": EXPORT},
    "models/":                                             {"GET": MODEL_READERS},
    "models/compare/":                                     {"GET": MODEL_READERS},
    "models/versions/<version_id>/":                       {"GET": MODEL_READERS},
    "models/versions/<version_id>/card/":                  {"GET": MODEL_READERS, "POST": TRAIN},
    "models/versions/<version_id>/card.md":                {"GET": MODEL_READERS},
    "models/versions/<version_id>/card.pdf":               {"GET": MODEL_READERS},
    "models/jobs/":                                        {"GET": TRAIN, "POST": TRAIN},
    "models/jobs/<job_id>/":                               {"GET": TRAIN},
    "models/jobs/<job_id>/progress.json":                  {"GET": TRAIN},
    "models/jobs/<job_id>/cancel/":                        {"POST": TRAIN},
    "models/loop/<project_id>/":                           {"GET": REPORT, "POST": CHANGE},
    "models/loop/<project_id>/run/":                       {"POST": CHANGE},
    "models/loop/<project_id>/retrain/":                   {"POST": EXPORT},
    "models/<name>/":                                      {"GET": MODEL_READERS, "POST": TRAIN},
    "generation/":                                         {"GET": TRAIN, "POST": TRAIN},
    "generation/jobs/<generation_job_id>/":                {"GET": TRAIN},
    "generation/jobs/<generation_job_id>/progress.json":   {"GET": TRAIN},
    "generation/jobs/<generation_job_id>/cancel/":         {"POST": TRAIN},
    "generation/jobs/<generation_job_id>/retry/":          {"POST": TRAIN},
    "generation/jobs/<generation_job_id>/download/":       {"GET": TRAIN},
    "generation/providers/":                               {"GET": TRAIN, "POST": ADMINS},
    "generation/providers/<provider_id>/":                 {"GET": TRAIN, "POST": ADMINS},
    "generation/providers/<provider_id>/test/":            {"POST": ADMINS},
    "generation/prompt-sets/":                             {"GET": TRAIN, "POST": TRAIN},
    "generation/prompt-sets/<prompt_set_id>/":             {"GET": TRAIN, "POST": TRAIN},
    "monitoring/":                                         {"GET": WATCH},
    "monitoring/calibration.json":                         {"GET": WATCH},
    "monitoring/zones.json":                               {"GET": WATCH},
    "monitoring/alerts/<alert_id>/acknowledge/":           {"POST": ADMINS},
    "monitoring/drift/<report_id>/":                       {"GET": WATCH},
    "monitoring/drift/<report_id>/evidently.html":         {"GET": WATCH},
    "monitoring/control/":                                 {"GET": WATCH},
    "monitoring/evolution/":                               {"GET": WATCH},
    "monitoring/preferences/":                             {"GET": SIGNED_IN},  # own projects only
    # -- API --------------------------------------------------------------------------------
    "api/auth/token/":                                     {"POST": ANYONE},
    "api/governance/":                                     {"GET": SIGNED_IN},
    "api/governance/me/":                                  {"GET": SIGNED_IN},
    "api/governance/audit-events/":                        {"GET": AUDITORS},
    "api/governance/audit-events/<sequence>/":             {"GET": AUDITORS},
    "api/governance/approval-requests/":                   {"GET": APPROVAL_READERS, "POST": "ada rosa"},
    "api/governance/approval-requests/<pk>/":              {"GET": APPROVAL_READERS},
    "api/governance/approval-requests/<pk>/decide/":       {"POST": DECIDE},

    "api/governance/webhooks/":                            {"GET": ADMINS, "POST": ADMINS},
    "api/governance/webhooks/<pk>/":                       {"GET": ADMINS, "PUT": ADMINS,
                                                            "PATCH": ADMINS, "DELETE": ADMINS},
    "api/governance/webhooks/<pk>/rotate-secret/":         {"POST": ADMINS},
    "api/governance/webhook-deliveries/":                  {"GET": ADMINS},
    "api/governance/webhook-deliveries/<pk>/":             {"GET": ADMINS},
    "api/governance/webhook-deliveries/<pk>/redeliver/":   {"POST": ADMINS},
    "api/annotation/":                                     {"GET": SIGNED_IN},
    "api/annotation/projects/":                            {"GET": SIGNED_IN, "POST": CREATORS},
    "api/annotation/projects/<pk>/":                       {"GET": MEMBERS, "PUT": CHANGE, "PATCH": CHANGE},
    "api/annotation/projects/<pk>/members/":               {"POST": CHANGE, "DELETE": CHANGE},
    "api/annotation/projects/<pk>/items/":                 {"GET": REVIEW, "POST": CHANGE},
    "api/annotation/projects/<pk>/import/":                {"POST": CHANGE},
    "api/annotation/projects/<pk>/next/":                  {"POST": ANNOTATE},
    "api/annotation/projects/<pk>/submit/":                {"POST": ANNOTATE},
    "api/annotation/projects/<pk>/skip/":                  {"POST": ANNOTATE},
    "api/annotation/projects/<pk>/adjudicate/":            {"POST": REVIEW},
    "api/annotation/projects/<pk>/consensus/":             {"GET": REVIEW},
    "api/annotation/projects/<pk>/recompute/":             {"POST": REVIEW},
    "api/annotation/projects/<pk>/stats/":                 {"GET": REPORT},
    "api/annotation/projects/<pk>/exports/":               {"GET": EXPORT, "POST": EXPORT},
    "api/annotation/snapshots/":                           {"GET": SIGNED_IN},  # rows filtered
    "api/annotation/snapshots/<pk>/":                      {"GET": EXPORT},
    "api/annotation/snapshots/<pk>/download/":             {"GET": EXPORT},
    "api/annotation/import-jobs/":                         {"GET": SIGNED_IN},  # rows filtered
    "api/annotation/import-jobs/<pk>/":                    {"GET": CHANGE},
    "api/monitoring/":                                     {"GET": SIGNED_IN},
    "api/monitoring/metric-points/":                       {"GET": WATCH},
    "api/monitoring/metric-points/<pk>/":                  {"GET": WATCH},
    "api/monitoring/detectors/":                           {"GET": WATCH},
    "api/monitoring/detectors/<pk>/":                      {"GET": WATCH},
    "api/monitoring/drift-reports/":                       {"GET": WATCH},
    "api/monitoring/drift-reports/<pk>/":                  {"GET": WATCH},
    "api/monitoring/error-zone-runs/":                     {"GET": WATCH},
    "api/monitoring/error-zone-runs/<pk>/":                {"GET": WATCH},
    "api/monitoring/alert-rules/":                         {"GET": WATCH},
    "api/monitoring/alert-rules/<pk>/":                    {"GET": WATCH},
    "api/monitoring/alerts/":                              {"GET": WATCH},
    "api/monitoring/alerts/<pk>/":                         {"GET": WATCH},
    "api/monitoring/alerts/<pk>/acknowledge/":             {"POST": ADMINS},
    "api/monitoring/preference-points/":                   {"GET": SIGNED_IN},  # rows: REPORT
    "api/monitoring/preference-points/<pk>/":              {"GET": REPORT},
    "api/monitoring/annotator-points/":                    {"GET": SIGNED_IN},
    "api/monitoring/annotator-points/<pk>/":               {"GET": REPORT},
    "api/monitoring/annotator-drift/":                     {"GET": SIGNED_IN},
    "api/monitoring/annotator-drift/<pk>/":                {"GET": REPORT},
    "api/monitoring/control-charts/accuracy/":             {"GET": WATCH},
    "api/monitoring/control-charts/agreement/":            {"GET": SIGNED_IN},  # ?project: REPORT
    "api/monitoring/control-charts/annotator/":            {"GET": SIGNED_IN},
    "api/monitoring/model-evolution/":                     {"GET": WATCH},
    "api/monitoring/preference-timeline/":                 {"GET": SIGNED_IN},
    "api/models/":                                         {"GET": SIGNED_IN},
    "api/models/registered/":                              {"GET": MODEL_READERS, "POST": TRAIN},
    "api/models/registered/<pk>/":                         {"GET": MODEL_READERS},
    # POST always refused (audited): aliases move only through approved requests.
    "api/models/registered/<pk>/aliases/":                 {"GET": MODEL_READERS, "POST": NO_ONE},
    "api/models/versions/":                                {"GET": MODEL_READERS},
    "api/models/versions/compare/":                        {"GET": MODEL_READERS},
    "api/models/versions/<pk>/":                           {"GET": MODEL_READERS},
    "api/models/versions/<pk>/card/":                      {"GET": MODEL_READERS, "PATCH": TRAIN},
    "api/models/base-models/":                             {"GET": TRAIN},
    "api/models/base-models/<pk>/":                        {"GET": TRAIN},
    "api/models/jobs/":                                    {"GET": TRAIN, "POST": TRAIN},
    "api/models/jobs/<pk>/":                               {"GET": TRAIN},
    "api/models/jobs/<pk>/cancel/":                        {"POST": TRAIN},
    "api/models/alias-changes/":                           {"GET": MODEL_READERS},
    "api/models/alias-changes/<pk>/":                      {"GET": MODEL_READERS},
    "api/models/predictions/":                             {"GET": TRAIN},
    "api/models/predictions/<pk>/":                        {"GET": TRAIN},
    "api/models/<ref>/predict":                            {"POST": TRAIN},
    "api/models/providers/":                               {"GET": TRAIN, "POST": ADMINS},
    "api/models/providers/<pk>/":                          {"GET": TRAIN, "PUT": ADMINS, "PATCH": ADMINS, "DELETE": ADMINS},
    "api/models/providers/<pk>/test/":                     {"POST": ADMINS},
    "api/models/prompt-sets/":                             {"GET": TRAIN, "POST": TRAIN},
    "api/models/prompt-sets/generate/":                    {"POST": TRAIN},
    "api/models/prompt-sets/import/":                      {"POST": TRAIN},
    "api/models/prompt-sets/<pk>/":                        {"GET": TRAIN},
    "api/models/prompt-sets/<pk>/prompts/":                {"GET": TRAIN},
    "api/models/prompt-sets/<pk>/review/":                 {"POST": TRAIN},
    "api/models/generation-jobs/":                         {"GET": TRAIN, "POST": TRAIN},
    "api/models/generation-jobs/<pk>/":                    {"GET": TRAIN},
    "api/models/generation-jobs/<pk>/cancel/":             {"POST": TRAIN},
    "api/models/generation-jobs/<pk>/retry/":              {"POST": TRAIN},
    "api/models/generation-jobs/<pk>/responses/":          {"GET": TRAIN},
    "api/models/generation-jobs/<pk>/download/":           {"GET": TRAIN},

    "api/models/loop/<project_id>/":                       {"GET": REPORT, "PATCH": CHANGE},
    "api/models/loop/<project_id>/runs/":                  {"GET": REPORT},
    "api/models/loop/<project_id>/chart/":                 {"GET": REPORT},
    "api/models/loop/<project_id>/run/":                   {"POST": CHANGE},
    "api/models/loop/<project_id>/errors/":                {"GET": REPORT},
    "api/models/loop/<project_id>/retrain/":               {"POST": EXPORT},
    "api/schema/":                                         {"GET": ANYONE},
    "api/docs/":                                           {"GET": ANYONE},
    # -- admin console: staff only (Ada); first matching pattern wins -----------------------
    "admin/login/":                                        {"GET": ANYONE, "POST": ANYONE},
    "admin/logout/":                                       {"POST": ANYONE},  # others: to /admin/
    "admin/jsi18n/":                                       {"GET": ADMINS},
    "admin/password_change/done/":                         {"GET": ADMINS},
    "admin/<url>":                                         {"GET": NO_ONE},  # unknown: 404
    "admin/r/<content_type_id>/<object_id>/":              {"GET": NO_ONE},  # no model has a URL
    "admin/autocomplete/":                                 {"GET": NO_ONE},  # none declared
    # Append-only records: not added, changed or deleted there, even by Ada.
    "admin/governance/auditevent/add/":                    {"GET": NO_ONE, "POST": NO_ONE},
    "admin/governance/auditevent/<object_id>/change/":     {"GET": ADMINS, "POST": NO_ONE},
    "admin/governance/auditevent/<object_id>/delete/":     {"GET": NO_ONE, "POST": NO_ONE},
    "admin/annotation/annotation/<object_id>/change/":     {"GET": ADMINS, "POST": NO_ONE},
    "admin/annotation/annotation/<object_id>/delete/":     {"GET": NO_ONE, "POST": NO_ONE},
    "admin/annotation/adjudication/<object_id>/change/":   {"GET": ADMINS, "POST": NO_ONE},
    "admin/annotation/datasetsnapshot/<object_id>/change/": {"GET": ADMINS, "POST": NO_ONE},
    "admin/annotation/datasetsnapshot/<object_id>/delete/": {"GET": NO_ONE, "POST": NO_ONE},
    "admin/annotation/importjob/add/":                     {"GET": NO_ONE, "POST": NO_ONE},
    "admin/governance/workerheartbeat/add/":               {"GET": NO_ONE, "POST": NO_ONE},
    "admin/governance/outboxmessage/add/":                 {"GET": NO_ONE, "POST": NO_ONE},
    "admin/governance/outboxmessage/<object_id>/change/":  {"GET": ADMINS, "POST": NO_ONE},
    "admin/governance/outboxmessage/<object_id>/delete/":  {"GET": NO_ONE, "POST": NO_ONE},
    # Approvals change through their services (opened, decided, expired); gate thresholds
    # through approved requests: read-only here.  Approval policies are edited by admins.
    "admin/governance/approvalrequest/add/":               {"GET": NO_ONE, "POST": NO_ONE},
    "admin/governance/approvalrequest/<object_id>/change/": {"GET": ADMINS, "POST": NO_ONE},
    "admin/governance/approvalrequest/<object_id>/delete/": {"GET": NO_ONE, "POST": NO_ONE},
    "admin/governance/approvaldecision/add/":              {"GET": NO_ONE, "POST": NO_ONE},
    "admin/governance/approvaldecision/<object_id>/change/": {"GET": ADMINS, "POST": NO_ONE},
    "admin/governance/approvaldecision/<object_id>/delete/": {"GET": NO_ONE, "POST": NO_ONE},
    "admin/governance/gateresult/add/":                    {"GET": NO_ONE, "POST": NO_ONE},
    "admin/governance/gateresult/<object_id>/change/":     {"GET": ADMINS, "POST": NO_ONE},
    "admin/governance/gateresult/<object_id>/delete/":     {"GET": NO_ONE, "POST": NO_ONE},
    "admin/governance/gatepolicy/add/":                    {"GET": NO_ONE, "POST": NO_ONE},
    "admin/governance/gatepolicy/<object_id>/change/":     {"GET": ADMINS, "POST": NO_ONE},
    "admin/governance/gatepolicy/<object_id>/delete/":     {"GET": NO_ONE, "POST": NO_ONE},
    "admin/governance/approvalpolicy/<object_id>/delete/": {"GET": NO_ONE, "POST": NO_ONE},

    # Webhooks are created in the app or the API (the secret is shown once there) and
    # changed through audited services: the admin reads them and runs actions.
    "admin/governance/webhook*/add/":                      {"GET": NO_ONE, "POST": NO_ONE},
    "admin/governance/webhook*/<object_id>/change/":       {"GET": ADMINS, "POST": NO_ONE},
    "admin/governance/webhook*/<object_id>/delete/":       {"GET": NO_ONE, "POST": NO_ONE},
    "admin/axes/accessattempt/add/":                       {"GET": NO_ONE, "POST": NO_ONE},
    "admin/axes/accesslog/add/":                           {"GET": NO_ONE, "POST": NO_ONE},
    "admin/axes/accessfailurelog/add/":                    {"GET": NO_ONE, "POST": NO_ONE},
    # The registry changes through its services only (validated, audited): read-only here.
    "admin/models_registry/*/add/":                        {"GET": NO_ONE, "POST": NO_ONE},
    "admin/models_registry/*/change/":                     {"GET": ADMINS, "POST": NO_ONE},
    "admin/models_registry/*/delete/":                     {"GET": NO_ONE, "POST": NO_ONE},
    # Monitoring rows are written by workers and audited services: read-only here.
    "admin/monitoring/*/add/":                             {"GET": NO_ONE, "POST": NO_ONE},
    "admin/monitoring/*/change/":                          {"GET": ADMINS, "POST": NO_ONE},
    "admin/monitoring/*/delete/":                          {"GET": NO_ONE, "POST": NO_ONE},
    "admin/*":                                             {"GET": ADMINS, "POST": ADMINS},
}
# fmt: on

#: Routes that answer 503 by design (a failing health check is an answer, not an error).
ANSWERS_503 = {"healthz"}

# -- Routes of the URL conf -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Route:
    """One URL pattern: its normalised path (the ``ROUTES`` key) and its view."""

    path: str
    callback: Any

    @property
    def key(self) -> str:
        return self.path

    @property
    def kwargs(self) -> list[str]:
        return re.findall(r"<(\w+)>", self.path)


def _normalise(pattern: str) -> str:
    """``<int:project_id>`` → ``<project_id>``; ``^x/(?P<pk>[^/.]+)/$`` → ``x/<pk>/``."""
    pattern = re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", pattern)
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("(?P<", i):
            name_end = pattern.index(">", i)
            name, depth, j = pattern[i + 4 : name_end], 1, name_end + 1
            while depth:  # skip the group's regex, nested parentheses included
                depth += {"(": 1, ")": -1}.get(pattern[j], 0)
                j += 1
            out.append(f"<{name}>")
            i = j
        else:
            out.append(pattern[i])
            i += 1
    text = "".join(out)
    return text.replace("^", "").replace("$", "")


def _walk(patterns, prefix: str = "") -> Iterator[Route]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield Route(_normalise(prefix + str(pattern.pattern)), pattern.callback)


def url_conf_routes() -> list[Route]:
    """Every route of the URL conf, recursively, in order."""
    return list(_walk(get_resolver().url_patterns))


def expectation(route: Route) -> dict[str, str] | None:
    """The route's line in ``ROUTES``: its own key, else the first matching pattern."""
    if route.key in ROUTES:
        return ROUTES[route.key]
    for key, rule in ROUTES.items():
        if "*" in key and fnmatch.fnmatchcase(route.key, key):
            return rule
    return None


def supported_methods(callback) -> set[str] | None:
    """The methods a class-based view or viewset answers (None for function views)."""
    if getattr(callback, "actions", None):  # DRF adds "head" to it on the first request
        return {method.upper() for method in callback.actions if method != "head"}
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is None:
        return None
    return {
        method.upper()
        for method in ("get", "post", "put", "patch", "delete")
        if method in view_class.http_method_names and hasattr(view_class, method)
    }


# -- The world the cases run in -------------------------------------------------------------


def _project_of(obj: models.Model) -> int | None:
    if isinstance(obj, Project):
        return obj.pk
    return getattr(obj, "project_id", None)


@dataclasses.dataclass
class World:
    """Two projects with something of every kind in them, and the global objects."""

    own: Project
    other: Project
    users: dict[str, Any]
    _values: dict[tuple[str, str, str], str] = dataclasses.field(default_factory=dict)

    def object_in(self, model: type[models.Model], side: str) -> models.Model:
        """A row of ``model`` in the own or the other project (or any row, if global)."""
        queryset = model._default_manager.order_by("pk")
        project = self.own if side == "own" else self.other
        if model is Project:
            return project
        if any(f.name == "project" for f in model._meta.fields):
            queryset = queryset.filter(project=project)
        obj = queryset.first()
        assert obj is not None, f"the matrix world has no {model.__name__} ({side})"
        return obj

    def value(self, route: Route, name: str, side: str) -> str:
        """The URL parameter ``name`` of ``route`` for the case's object ``side``."""
        child_side = "other" if side == "mixed" else side
        parent_side = "own" if side == "mixed" else side
        if name in ("project_id", "object_pk"):
            return str(self.object_in(Project, parent_side).pk)
        if name == "item_id":
            return str(self.object_in(Item, child_side).pk)
        if name == "snapshot_id":
            return str(self.object_in(DatasetSnapshot, child_side).pk)
        if name == "pk":  # API: the viewset's model
            return str(self.object_in(route.callback.cls.queryset.model, child_side).pk)
        if name == "sequence":
            return str(AuditEvent.objects.order_by("sequence").first().sequence)
        if name == "object_id":  # admin: admin/<app>/<model>/<object_id>/...
            if route.path.startswith("admin/r/"):
                return str(self.object_in(Project, child_side).pk)
            app_label, model_name = route.path.split("/")[1:3]
            model = apps.get_model(app_label, model_name)
            return str(self.object_in(model, child_side).pk)
        if name in ("id", "user_id"):
            return str(self.users["anna"].pk)
        if name == "group_id":
            return str(Group.objects.get(name="reviewer").pk)
        if name == "content_type_id":
            return str(ContentType.objects.get_for_model(Project).pk)
        if name == "app_label":
            return "annotation"
        if name == "url":
            return "no-such-page/"
        if name == "version_id":
            return str(ModelVersion.objects.order_by("pk").first().pk)
        if name == "job_id":
            return str(TrainingJob.objects.order_by("pk").first().pk)
        if name == "name":
            return RegisteredModel.objects.order_by("pk").first().name
        if name == "ref":
            return ModelVersion.objects.order_by("pk").first().ref
        if name == "alert_id":
            return str(Alert.objects.order_by("pk").first().pk)
        if name == "report_id":
            return str(DriftReport.objects.order_by("pk").first().pk)
        if name == "request_id":
            return str(ApprovalRequest.objects.order_by("pk").first().pk)

        if name == "subscription_id":
            return str(WebhookSubscription.objects.order_by("pk").first().pk)
        if name == "delivery_id":
            return str(WebhookDelivery.objects.order_by("pk").first().pk)
        if name == "generation_job_id":
            return str(GenerationJob.objects.order_by("pk").first().pk)
        if name == "provider_id":
            return str(Provider.objects.order_by("pk").first().pk)
        if name == "prompt_set_id":
            return str(PromptSet.objects.order_by("pk").first().pk)
        raise AssertionError(f"{route.path}: no value for <{name}>; add it to World.value")

    def sides(self, route: Route) -> list[str]:
        """Which objects the route is tried with: own/other (and mixed), or global."""
        if route.path.startswith("admin/"):
            return ["global"]
        scoped = [n for n in route.kwargs if self._project_scoped(route, n)]
        if not scoped:
            return ["global"]
        return ["own", "other", "mixed"] if len(scoped) > 1 else ["own", "other"]

    @staticmethod
    def _project_scoped(route: Route, name: str) -> bool:
        """Whether the parameter names an object inside a project (the registry's models,
        for one, belong to no project: their routes run once, "global")."""
        if name == "pk":
            model = route.callback.cls.queryset.model
            return model is Project or any(f.name == "project" for f in model._meta.fields)
        return name in ("project_id", "item_id", "snapshot_id")

    def url(self, route: Route, side: str) -> str:
        path = route.path
        for name in route.kwargs:
            key = (route.path, name, side)
            if key not in self._values:
                self._values[key] = self.value(route, name, "own" if side == "global" else side)
            path = path.replace(f"<{name}>", self._values[key], 1)
        return "/" + path


def _build_world(users: dict[str, Any]) -> World:
    rosa, anna, ben, rex, vic, otto = (
        users[n] for n in ("rosa", "anna", "ben", "rex", "vic", "otto")
    )
    own = services.project_create(created_by=rosa, name="Own", overlap=1)
    for user, role in ((anna, "annotator"), (ben, "annotator"), (rex, "reviewer"), (vic, "viewer")):
        services.project_member_add(project=own, user=user, role=role)
    other = services.project_create(created_by=otto, name="Other", overlap=1)
    services.project_member_add(project=other, user=otto, role="annotator")
    for project, annotator, reviewer in ((own, ben, rex), (other, otto, otto)):
        services.items_create_bulk(project=project, rows=pairs(3))
        annotation = label(project, annotator, "A")
        consensus_recompute(project=project)
        services.adjudication_record(
            project=project, item_id=annotation.item_id, reviewer=reviewer,
            answer={"preference": {"choice": "B"}}, reason="checked",
        )  # fmt: skip
        exports.dataset_export(project=project, fmt="trl", user=project.created_by)
        upload = io.BytesIO(json.dumps(pairs(1, prefix="job")[0]).encode())
        upload.name = "job.jsonl"
        services.import_job_create(project=project, user=project.created_by, file=upload)
    Token.objects.get_or_create(user=users["ada"])
    UserPreference.objects.create(user=anna, theme="dark")
    # django-axes' admin pages (the login lockout's records) need a row of each.
    attempt = {"username": "anna", "ip_address": "10.0.0.1", "user_agent": "matrix",
               "http_accept": "*/*", "path_info": "/accounts/login/"}  # fmt: skip
    AccessAttempt.objects.create(**attempt, get_data="", post_data="", failures_since_start=1)
    AccessFailureLog.objects.create(**attempt)
    AccessLog.objects.create(**attempt)
    WorkerHeartbeat.objects.create(
        hostname="matrix@test", queues=["default"], last_seen=timezone.now(),
        started_at=timezone.now(),
    )  # fmt: skip
    assert Adjudication.objects.count() == ImportJob.objects.count() == 2
    from monitoring import preferences

    for project in (own, other):  # preference and annotator points, annotator drift
        preferences.preference_points_refresh(project_id=project.pk)
    _build_registry(users, DatasetSnapshot.objects.filter(project=own).first())
    _build_webhooks(users)
    return World(own=own, other=other, users=users)


def _build_webhooks(users: dict[str, Any]) -> None:
    """A subscription with one finished delivery (so it can be redelivered)."""
    from governance import services as governance_services

    subscription, _ = governance_services.webhook_subscription_create(
        user=users["ada"], name="matrix", url="http://127.0.0.1:9/hook",
        event_types=["approval.requested"], allow_private=True,
    )  # fmt: skip
    governance_services.audit_event_record(
        action="approval.requested", object_type="governance.approvalrequest", object_id=1
    )
    WebhookDelivery.objects.filter(subscription=subscription).update(status="failed")


def _build_registry(users: dict[str, Any], snapshot: DatasetSnapshot) -> None:
    """One of every registry record (the version's artifact is never loaded here)."""
    from models_registry import services as models_services

    rosa = users["rosa"]
    base = models_services.base_model_minilm_ensure(user=users["ada"])
    job = models_services.training_job_create(
        user=rosa, kind="reward", registered_model_name="matrix-rm", base_model=base,
        snapshot_id=snapshot.pk,
    )  # fmt: skip
    version = ModelVersion.objects.create(
        registered_model=job.registered_model, number=1, kind="reward", base_model=base,
        snapshot=snapshot, snapshot_sha256=snapshot.sha256, training_job=job,
        artifact_path="models/matrix-rm/none", artifact_sha256="0" * 64, artifact_files={},
        size_bytes=0, training_config=job.config, library_versions={}, metrics={},
        calibration={"method": "temperature", "temperature": 1.0},
    )  # fmt: skip
    models_services.model_alias_set(
        registered_model=job.registered_model, alias="production", version=version, user=rosa
    )
    models_services.model_card_start(version=version, actor=rosa)
    prediction = Prediction.objects.create(
        version=version, text_sha256="0" * 64, reward_a=1.0, reward_b=0.0, margin=1.0, p_a=0.7
    )
    _build_monitoring(users, version, prediction)
    _build_approvals(users, version)


def _build_approvals(users: dict[str, Any], version: ModelVersion) -> None:
    """An open request (Rosa asks to promote the version to staging; the first request, so
    the one the routes name), a closed one with a decision, and the policies' rows."""
    from governance import services as governance_services

    rosa = users["rosa"]
    governance_services.approval_request_open(
        kind="model.promote", subject=version, payload={"alias": "staging"},
        requested_by=rosa, justification="matrix",
    )  # fmt: skip
    closed = governance_services.approval_request_open(
        kind="model.revoke", subject=version, payload={"alias": "production"},
        requested_by=rosa, justification="matrix",
    )  # fmt: skip
    governance_services.approval_request_decide(
        request=closed, reviewer=users["eve"], verdict="request_changes", rationale="matrix"
    )
    governance_services.gate_policy_set(
        kind="model.promote", gate="heldout_accuracy", threshold=0.6
    )
    governance_services.approval_policy_set(kind="model.promote", quorum=2)

    _build_generation(users)


def _build_generation(users: dict[str, Any]) -> None:
    """A provider (nothing listens at its URL: its connection test fails fast), a typed
    prompt set and a queued generation job."""
    from models_registry import generation, prompts, providers

    provider = providers.provider_create(
        user=users["ada"], name="matrix", base_url="http://127.0.0.1:9/v1", model_name="m",
        api_key="sk-matrix", timeout_seconds=0.5,
    )  # fmt: skip
    prompt_set = prompts.prompt_set_create(user=users["rosa"], name="matrix", prompts=["p"])
    generation.generation_job_create(user=users["rosa"], prompt_set=prompt_set, provider=provider)


def _build_monitoring(users: dict[str, Any], version: ModelVersion, prediction) -> None:
    """One of every monitoring record: an outcome and its metric points, the detectors,
    a drift report, a rule with a firing alert and its notifications."""
    from datetime import timedelta

    from monitoring import services as monitoring_services
    from monitoring.models import Outcome

    outcome = Outcome.objects.create(
        prediction=prediction, version=version, project=version.snapshot.project, p_a=0.7,
        margin=1.0, label=0, predicted_at=prediction.created_at,
    )  # fmt: skip
    monitoring_services.metric_points_update(version=version, times=[outcome.predicted_at])
    monitoring_services.detectors_update(version=version, outcomes=[outcome])
    now = timezone.now()
    report = monitoring_services.drift_report_request(
        version=version, method="fast", reference=(now - timedelta(days=2), now), current=(now, now)
    )
    from monitoring import zones

    zones.error_zones_request(version=version, start=now - timedelta(days=2), end=now)
    # The stored Evidently page that the report's HTML route serves.
    report.html.save("drift-matrix.html", ContentFile(b"<html><body>report</body></html>"))
    monitoring_services.alert_rule_create(
        user=users["rosa"], name="matrix", metric="accuracy", comparator="lt", threshold=0.5,
        window="day", cooldown=timedelta(hours=1), registered_model=version.registered_model,
    )  # fmt: skip
    assert monitoring_services.alert_rules_evaluate(version=version)


PERSONA_ROLES = {
    "ada": ["admin"], "rosa": ["researcher"], "anna": ["annotator"], "ben": ["annotator"],
    "rex": ["reviewer"], "eve": ["ethics_committee"], "vic": ["viewer"], "nobody": [],
    "otto": ["researcher"],
}  # fmt: skip


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker) -> Iterator[World]:
    """One world for the whole module, built in a transaction that is rolled back at the
    end (each test's own transaction nests inside it, as in Django's TestCase)."""
    fast_hashing = override_settings(
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]
    )
    with django_db_blocker.unblock(), fast_hashing, transaction.atomic():
        users = {
            name: UserFactory(username=name, roles=roles, is_staff=name == "ada",
                              is_superuser=name == "ada")
            for name, roles in PERSONA_ROLES.items()
        }  # fmt: skip
        yield _build_world(users)
        transaction.set_rollback(True)


# -- Running one case -----------------------------------------------------------------------

LOGIN_PAGES = (resolve_url(settings.LOGIN_URL), "/admin/login/")


def outcome(route: Route, response) -> str:
    """``allowed``, ``refused`` or ``error`` (5xx, or a method the route does not answer)."""
    status = response.status_code
    if status == 503 and route.key in ANSWERS_503:
        return "allowed"
    if status >= 500 or status == 405:
        return "error"
    if status in (401, 403, 404):
        return "refused"
    location = response.get("Location", "") if 300 <= status < 400 else ""
    if location.startswith(LOGIN_PAGES) and "next=" in location:
        return "refused"
    return "allowed"


def send(client: Client, method: str, url: str):
    """One request in a savepoint that is rolled back, with an empty body."""
    options: dict[str, Any] = {}
    if method != "GET" and url.startswith("/api/"):
        options = {"data": "{}", "content_type": "application/json"}
    with transaction.atomic():
        response = getattr(client, method.lower())(url, **options)
        transaction.set_rollback(True)
    return response


def leaked_rows(route: Route, response, world: World) -> list[dict]:
    """Rows of the other project in an API list (IDOR through a list instead of an id)."""
    if not route.path.startswith("api/annotation/") or route.kwargs:
        return []
    if response.status_code != 200 or "application/json" not in response.get("Content-Type", ""):
        return []
    rows = response.json().get("results", []) if isinstance(response.json(), dict) else []
    is_project_list = route.key == "api/annotation/projects/"
    return [
        row for row in rows
        if row.get("project") == world.other.pk or (is_project_list and row.get("id") == world.other.pk)
    ]  # fmt: skip


def client_for(persona: str, world: World) -> Client:
    client = Client(raise_request_exception=False)  # a 500 is a case's outcome
    if persona != "anonymous":
        client.force_login(world.users[persona])
    return client


def matrix_cases(world: World, persona: str) -> Iterator[tuple[Route, str, str, set[str]]]:
    """(route, method, object side, who may) for every case of the matrix."""
    for route in url_conf_routes():
        rule = expectation(route)
        assert rule is not None, route.path  # test_every_route_is_in_the_matrix says how
        for method, who in rule.items():
            if route.path.startswith("admin/") and method != "GET" and persona not in who:
                # The admin refuses non-staff in one wrapper, before the view and whatever
                # the method: GET stands for every method there.
                continue
            for side in world.sides(route):
                allowed = set(who.split())
                if side == "other":
                    allowed &= {"ada"}  # nobody else is a member of the other project
                elif side == "mixed":
                    allowed = set()  # an object reached through a project it is not in
                yield route, method, side, allowed


# -- The tests ------------------------------------------------------------------------------


def test_every_route_is_in_the_matrix():
    """A route or a method that is not declared in ``ROUTES`` fails here."""
    problems = []
    for route in url_conf_routes():
        rule = expectation(route)
        if rule is None:
            problems.append(
                f"{route.path!r} is not in the RBAC matrix: add a line to ROUTES in "
                f"{__name__.replace('.', '/')}.py, e.g.\n"
                f'    "{route.key}": {{"GET": MEMBERS}},\n'
                "with each method the route answers and who may call it on their own project."
            )
            continue
        # The admin site's own views answer every method and refuse non-staff centrally.
        methods = None if route.key.startswith("admin/") else supported_methods(route.callback)
        if methods is not None and methods != set(rule):
            problems.append(
                f"{route.key!r} answers {sorted(methods)} but ROUTES declares {sorted(rule)}: "
                "make its line list exactly the methods it answers."
            )
    for key in ROUTES:
        if "*" not in key and not any(r.key == key for r in url_conf_routes()):
            problems.append(f"{key!r} is in ROUTES but no longer in the URL conf: remove it.")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("persona", PERSONAS)
def test_rbac_matrix(persona, world):
    """Every route × method × object, for one persona: allowed exactly where declared."""
    client = client_for(persona, world)
    wrong = []
    for route, method, side, allowed in matrix_cases(world, persona):
        url = world.url(route, side)
        response = send(client, method, url)
        expected = "allowed" if persona in allowed else "refused"
        got = outcome(route, response)
        if got != expected:
            wrong.append(
                f"{method} {url} ({side}): expected {expected}, got {response.status_code}"
            )
        elif persona != "ada" and (leaks := leaked_rows(route, response, world)):
            wrong.append(f"{method} {url}: lists {len(leaks)} row(s) of the other project")
        session = client.cookies.get(settings.SESSION_COOKIE_NAME)
        if persona != "anonymous" and not (session and session.value):
            client.force_login(world.users[persona])  # a logout case signed them out
    assert not wrong, f"{persona}: {len(wrong)} case(s) differ from ROUTES:\n" + "\n".join(wrong)
