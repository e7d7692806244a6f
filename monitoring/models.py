"""Monitoring records: outcomes (predictions that met the human consensus), pre-aggregated
calibration metric points, persisted streaming-detector state, drift reports, alert rules,
alerts and in-app notifications.

Monitoring reads the registry (``models_registry.selectors``) and the consensus
(``annotation.selectors``); the rows here are its own, so dashboards and rules never scan
the predictions.  Monitoring objects belong to no project (like the registry's): they are
read with model permissions (researchers, viewers) and written by admins and the workers.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Window(models.TextChoices):
    """The width of a metric point's time bucket."""

    HOUR = "hour", "Hour"
    DAY = "day", "Day"
    WEEK = "week", "Week"


class Outcome(models.Model):
    """One prediction that met the human consensus: what the model said and what people
    said.  ``label`` is 1 when the humans preferred response A (the model's P(a ≻ b)
    target), 0 for B; ties give no outcome."""

    prediction = models.OneToOneField(
        "models_registry.Prediction", on_delete=models.CASCADE, related_name="+"
    )
    version = models.ForeignKey(
        "models_registry.ModelVersion", on_delete=models.CASCADE, related_name="+"
    )
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    p_a = models.FloatField()
    margin = models.FloatField()
    label = models.PositiveSmallIntegerField()
    predicted_at = models.DateTimeField(db_index=True)
    observed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version", "predicted_at", "id"]
        indexes = [models.Index(fields=["version", "predicted_at"], name="outcome_by_time")]

    def __str__(self) -> str:
        return f"{self.version_id}/{self.prediction_id}: p={self.p_a:.3f} y={self.label}"

    @property
    def error(self) -> bool:
        """Whether the model's preferred response differs from the humans'."""
        return (self.p_a > 0.5) != (self.label == 1)


class OutcomeCursor(models.Model):
    """Where outcome collection of one version stands, so that predictions whose items are
    never labelled cannot keep it from the ones that are (``services.outcomes_collect``).

    ``scanned_to``: the highest prediction id ever looked at (newer ones are new);
    ``revisit_after``: the rotation through the older, still unmatched ones resumes after
    this id (0: from the start).  Written only under the version's collection lock.
    """

    version = models.OneToOneField(
        "models_registry.ModelVersion", on_delete=models.CASCADE, related_name="+"
    )
    scanned_to = models.PositiveBigIntegerField(default=0)
    revisit_after = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.version_id}: new after {self.scanned_to}, revisit after {self.revisit_after}"


class MetricPoint(models.Model):
    """Calibration of one version's outcomes in one time bucket (pre-aggregated)."""

    version = models.ForeignKey(
        "models_registry.ModelVersion", on_delete=models.CASCADE, related_name="+"
    )
    window = models.CharField(max_length=5, choices=Window.choices)
    start = models.DateTimeField()
    n = models.PositiveIntegerField()
    accuracy = models.FloatField()
    ece = models.FloatField(help_text="Expected calibration error, equal-width bins.")
    ece_equal_mass = models.FloatField()
    mce = models.FloatField()
    brier = models.FloatField()
    nll = models.FloatField()
    reliability = models.JSONField(default=dict, help_text="prob_pred, prob_true, counts")
    computed_at = models.DateTimeField(auto_now=True)

    #: The metrics an alert rule may watch.
    METRICS = ("accuracy", "ece", "ece_equal_mass", "mce", "brier", "nll", "n")

    class Meta:
        ordering = ["version", "window", "start"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "window", "start"], name="metric_point_unique_bucket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.version_id} {self.window} {self.start:%Y-%m-%d %H:%M}: ece={self.ece:.3f}"


class DetectorState(models.Model):
    """A river drift detector of one version's stream, pickled after every update so a
    worker restart continues where it stopped."""

    class Stream(models.TextChoices):
        ERROR = "error", "Model-vs-human error"
        CONFIDENCE = "confidence", "Confidence"

    class Kind(models.TextChoices):
        ADWIN = "adwin", "ADWIN"
        DDM = "ddm", "DDM"
        PAGE_HINKLEY = "page_hinkley", "Page–Hinkley"
        KSWIN = "kswin", "KSWIN"

    version = models.ForeignKey(
        "models_registry.ModelVersion", on_delete=models.CASCADE, related_name="+"
    )
    stream = models.CharField(max_length=10, choices=Stream.choices)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    state = models.BinaryField(help_text="pickle of the river detector")
    n_seen = models.PositiveIntegerField(default=0)
    n_drifts = models.PositiveIntegerField(default=0)
    last_drift_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["version", "stream", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "stream", "kind"], name="detector_unique_per_stream"
            )
        ]

    def __str__(self) -> str:
        return f"{self.version_id} {self.stream}/{self.kind}: {self.n_drifts} drifts"


class DriftReport(models.Model):
    """A comparison of a reference window of a version's outcomes with a current one.

    ``result`` holds the verdicts (per column: test, statistic, threshold, drifted; the
    share of drifted columns and the dataset verdict).  The Evidently run keeps its JSON in
    ``evidently_json`` and its self-contained HTML report in ``html`` (a file in storage).
    """

    class Method(models.TextChoices):
        FAST = "fast", "Fast path (numpy/scipy)"
        EVIDENTLY = "evidently", "Evidently"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    version = models.ForeignKey(
        "models_registry.ModelVersion", on_delete=models.CASCADE, related_name="+"
    )
    method = models.CharField(max_length=10, choices=Method.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    reference_start = models.DateTimeField()
    reference_end = models.DateTimeField()
    current_start = models.DateTimeField()
    current_end = models.DateTimeField()
    result = models.JSONField(default=dict)
    evidently_json = models.JSONField(null=True, blank=True)
    html = models.FileField(upload_to="monitoring/drift/", blank=True)
    error = models.TextField(blank=True)
    dataset_drift = models.BooleanField(null=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"drift #{self.pk} {self.version_id} ({self.method}, {self.status})"


#: Control-chart metrics a rule may watch: 1.0 when the latest point of the version's
#: accuracy chart is out of control (``accuracy_spc``: beyond 3σ; ``accuracy_we``: any
#: Western Electric rule), else 0.0 (see ``monitoring.charts.spc_rule_value``).
SPC_RULE_METRICS = ("accuracy_spc", "accuracy_we")


class Comparator(models.TextChoices):
    """How a rule compares the metric with its threshold."""

    GT = "gt", ">"
    GTE = "gte", "≥"
    LT = "lt", "<"
    LTE = "lte", "≤"


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class AlertRule(models.Model):
    """When to raise an alert: ``metric`` of the latest ``window`` point of the version
    that ``alias`` of ``registered_model`` names, compared with ``threshold``.

    An alert fires once while the condition holds, resolves when it stops, and may fire
    again only ``cooldown`` after it last fired.  ``scope_project`` narrows the rule to
    outcomes of one annotation project (none: every project).
    """

    name = models.CharField(max_length=200)
    metric = models.CharField(
        max_length=20, choices=[(m, m) for m in (*MetricPoint.METRICS, *SPC_RULE_METRICS)]
    )
    comparator = models.CharField(max_length=3, choices=Comparator.choices)
    threshold = models.FloatField()
    window = models.CharField(max_length=5, choices=Window.choices, default=Window.DAY)
    min_outcomes = models.PositiveIntegerField(
        default=1, help_text="Points with fewer outcomes are not judged."
    )
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.WARNING)
    cooldown = models.DurationField()
    registered_model = models.ForeignKey(
        "models_registry.RegisteredModel", on_delete=models.CASCADE, related_name="+"
    )
    alias = models.CharField(max_length=50, default="production")
    scope_project = models.ForeignKey(
        "annotation.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    email_to = models.JSONField(default=list, blank=True, help_text="addresses to e-mail")
    retrain = models.BooleanField(
        default=False,
        help_text="When it fires, train the next version on a fresh snapshot (never promoted "
        "by the rule: promotion needs governance approval).",
    )
    retrain_config = models.JSONField(
        default=dict, blank=True, help_text="Training settings; empty: those of the version."
    )
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name}: {self.metric} {self.get_comparator_display()} {self.threshold}"

    def clean(self):
        # A control chart is drawn from the version's own points, which are not per project.
        if self.metric in SPC_RULE_METRICS and self.scope_project_id is not None:
            from django.core.exceptions import ValidationError

            raise ValidationError(
                {"scope_project": "control-chart metrics watch the whole version: leave empty"}
            )


class Alert(models.Model):
    """One firing of a rule, from firing through acknowledged to resolved."""

    class State(models.TextChoices):
        FIRING = "firing", "Firing"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    OPEN = (State.FIRING, State.ACKNOWLEDGED)

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    version = models.ForeignKey(
        "models_registry.ModelVersion", on_delete=models.CASCADE, related_name="+"
    )
    state = models.CharField(max_length=12, choices=State.choices, default=State.FIRING)
    value = models.FloatField(help_text="The metric's value when the alert fired.")
    point_start = models.DateTimeField()
    fired_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    # A retraining rule's firing: the one training job it started, or why it started none.
    retraining_job = models.OneToOneField(
        "models_registry.TrainingJob", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    retraining_note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-fired_at", "-id"]
        constraints = [
            # At most one open alert per rule: a rule fires once while its condition holds.
            models.UniqueConstraint(
                fields=["rule"],
                condition=models.Q(state__in=["firing", "acknowledged"]),
                name="alert_one_open_per_rule",
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule.name} ({self.state}) at {self.fired_at:%Y-%m-%d %H:%M}"


class Notification(models.Model):
    """An in-app message to one user about an alert."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="monitoring_notifications"
    )
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notifications")
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.message}"


class ErrorZoneRun(models.Model):
    """One search for error zones: the disagreements (model ≠ humans) of a version's
    outcomes in [start, end), clustered on their texts (TF-IDF or MiniLM embeddings).

    Computed by a worker (``monitoring.zones.error_zones_run``), daily by beat and on
    demand; the dashboard reads the latest finished run of a version.
    """

    class Method(models.TextChoices):
        TFIDF = "tfidf", "TF-IDF"
        EMBEDDING = "embedding", "MiniLM embeddings"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    version = models.ForeignKey(
        "models_registry.ModelVersion", on_delete=models.CASCADE, related_name="+"
    )
    method = models.CharField(max_length=10, choices=Method.choices, default=Method.TFIDF)
    window = models.CharField(
        max_length=5, choices=Window.choices, default=Window.DAY, help_text="The trend's buckets."
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    start = models.DateTimeField()
    end = models.DateTimeField()
    n_outcomes = models.PositiveIntegerField(default=0)
    n_errors = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["version", "status", "-created_at"], name="zone_run_latest")
        ]

    def __str__(self) -> str:
        return f"zones #{self.pk} {self.version_id} ({self.method}, {self.status})"


class ErrorZone(models.Model):
    """A cluster of disagreements: its top terms, how many disagreements it holds
    (``size``), the outcomes that fall inside it (``n_outcomes``: within the farthest
    member's distance of its centre), their error rate and its trend per bucket."""

    run = models.ForeignKey(ErrorZoneRun, on_delete=models.CASCADE, related_name="zones")
    index = models.PositiveSmallIntegerField(help_text="1 = the largest zone of the run.")
    size = models.PositiveIntegerField()
    n_outcomes = models.PositiveIntegerField()
    error_rate = models.FloatField()
    top_terms = models.JSONField(default=list, help_text="[[term, weight], …]")
    examples = models.JSONField(default=list, help_text="item refs of typical disagreements")
    trend = models.JSONField(default=list, help_text="[{start, n, errors, error_rate}, …]")

    #: Lets ``governance.access`` read a zone with its run's permissions.
    access_parent = "run"

    class Meta:
        ordering = ["run", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="error_zone_unique_index")
        ]

    def __str__(self) -> str:
        terms = ", ".join(t for t, _ in self.top_terms[:3])
        return f"zone {self.index} of run {self.run_id}: {terms}"


class PreferencePoint(models.Model):
    """How one project's human preferences moved in one time bucket (pre-aggregated from
    its annotations, gold items left out): the votes per label code, the agreement of the
    votes with the current consensus, and Krippendorff's α (nominal) over the items
    completed in the bucket (those whose last vote falls in it)."""

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    window = models.CharField(max_length=5, choices=Window.choices)
    start = models.DateTimeField()
    n_votes = models.PositiveIntegerField()
    counts = models.JSONField(help_text="votes per label code (pairwise: A, tie, B)")
    n_consensus_votes = models.PositiveIntegerField(
        help_text="votes on items with a consensus of at least two votes"
    )
    agreement = models.FloatField(null=True, help_text="share of those votes = consensus")
    n_items = models.PositiveIntegerField(help_text="items completed in the bucket")
    alpha = models.FloatField(null=True, help_text="Krippendorff's α (nominal) of those items")
    computed_at = models.DateTimeField()

    # The project's agreement and annotator quality: its "report" permission (its
    # researchers, reviewers and viewers), as on the project's own dashboard.
    access_parent = "project"
    access_parent_view_action = "report"

    class Meta:
        ordering = ["project", "window", "start"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "window", "start"], name="preference_point_unique_bucket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.window} {self.start:%Y-%m-%d %H:%M}: {self.n_votes} votes"


class AnnotatorPoint(models.Model):
    """One annotator's votes of one project in one time bucket: agreement with the
    consensus (votes on items whose consensus has at least two votes) and speed (the
    mean and standard deviation of the natural log of the time per vote, in ms)."""

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    window = models.CharField(max_length=5, choices=Window.choices)
    start = models.DateTimeField()
    n_votes = models.PositiveIntegerField()
    n_consensus_votes = models.PositiveIntegerField()
    n_agree = models.PositiveIntegerField()
    log_lead_time_mean = models.FloatField()
    log_lead_time_sd = models.FloatField()
    computed_at = models.DateTimeField()

    # The project's agreement and annotator quality: its "report" permission (its
    # researchers, reviewers and viewers), as on the project's own dashboard.
    access_parent = "project"
    access_parent_view_action = "report"

    class Meta:
        ordering = ["project", "annotator", "window", "start"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "annotator", "window", "start"],
                name="annotator_point_unique_bucket",
            )
        ]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.annotator_id} {self.window} {self.start:%Y-%m-%d}"


class AnnotatorDrift(models.Model):
    """Whether an annotator's agreement with consensus or speed has left its own
    baseline: the verdict of the annotator's control chart (``monitoring.spc``) over the
    ``window`` points, kept so the pages and the API read it without recomputing."""

    class Metric(models.TextChoices):
        AGREEMENT = "agreement", "Agreement with consensus"
        SPEED = "speed", "Time per vote"

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    metric = models.CharField(max_length=10, choices=Metric.choices)
    window = models.CharField(max_length=5, choices=Window.choices)
    n_points = models.PositiveIntegerField()
    center = models.FloatField(null=True, help_text="the baseline's centre line")
    latest = models.FloatField(null=True, help_text="the latest point's value")
    drifting = models.BooleanField(default=False, help_text="the latest point signals")
    direction = models.CharField(max_length=5, blank=True, help_text="up or down")
    signals = models.PositiveIntegerField(default=0, help_text="points that signal")
    last_signal_at = models.DateTimeField(null=True, blank=True)
    since = models.DateTimeField(null=True, blank=True, help_text="start of the current run")
    updated_at = models.DateTimeField(auto_now=True)

    # The project's agreement and annotator quality: its "report" permission (its
    # researchers, reviewers and viewers), as on the project's own dashboard.
    access_parent = "project"
    access_parent_view_action = "report"

    class Meta:
        ordering = ["project", "-drifting", "annotator", "metric"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "annotator", "metric"], name="annotator_drift_unique"
            )
        ]

    def __str__(self) -> str:
        state = "drifting" if self.drifting else "in control"
        return f"{self.project_id}/{self.annotator_id} {self.metric}: {state}"
