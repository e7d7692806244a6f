"""The chart data of the control-chart, model-evolution and preference pages, under
``/api/monitoring/`` (the pages' scripts read exactly these).  Read-only; who may read is
decided by ``governance.access`` on the model each answer is made from (researchers and
viewers); bad filters answer 400 naming the field."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from governance import access
from models_registry.models import RegisteredModel
from monitoring import charts, selectors, spc
from monitoring.models import (
    AnnotatorDrift,
    AnnotatorPoint,
    MetricPoint,
    PreferencePoint,
    Window,
)
from rlhf_platform.api import RestrictedReadOnlyViewSet

# -- query parameters -----------------------------------------------------------------------


class _WindowQuery(serializers.Serializer):
    window = serializers.ChoiceField(choices=Window.choices, default=Window.DAY)


class _ChartQuery(_WindowQuery):
    baseline = serializers.IntegerField(
        min_value=2, max_value=200, required=False, help_text="points in the baseline"
    )
    rules = serializers.CharField(
        required=False,
        max_length=20,
        help_text='Western Electric rules: "1" (default), "1,4", "we"',
    )

    def validate_rules(self, value: str) -> tuple[int, ...]:
        try:
            return spc.rules_parse(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc).partition(": ")[2]) from exc


class AccuracyChartQuery(_ChartQuery):
    version = serializers.IntegerField(min_value=1, max_value=2**62)
    metric = serializers.ChoiceField(choices=charts.CHART_METRICS, default="accuracy")


class ProjectQuery(_WindowQuery):
    project = serializers.IntegerField(min_value=1, max_value=2**62)


class AgreementChartQuery(_ChartQuery):
    project = serializers.IntegerField(min_value=1, max_value=2**62)


class AnnotatorChartQuery(serializers.Serializer):
    project = serializers.IntegerField(min_value=1, max_value=2**62)
    annotator = serializers.IntegerField(min_value=1, max_value=2**62)
    metric = serializers.ChoiceField(choices=AnnotatorDrift.Metric.choices)


class EvolutionQuery(_WindowQuery):
    model = serializers.CharField(max_length=100, help_text="registered model name")


# -- answers ---------------------------------------------------------------------------------


class ControlChartPointSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    value = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField(help_text="outcomes, items or votes behind the value")
    ucl = serializers.FloatField(allow_null=True)
    lcl = serializers.FloatField(allow_null=True)
    z = serializers.FloatField(allow_null=True)
    signals = serializers.ListField(child=serializers.IntegerField(), help_text="rules fired")


class ControlChartSerializer(serializers.Serializer):
    subject = serializers.CharField()
    metric = serializers.CharField()
    window = serializers.CharField()
    baseline = serializers.IntegerField()
    rules = serializers.ListField(child=serializers.IntegerField())
    center = serializers.FloatField(allow_null=True)
    out_of_control = serializers.BooleanField()
    points = ControlChartPointSerializer(many=True)


class TrainingDataSerializer(serializers.Serializer):
    snapshot = serializers.IntegerField()
    project = serializers.IntegerField()
    project_name = serializers.CharField()
    rows = serializers.IntegerField()
    items = serializers.IntegerField(allow_null=True)
    alpha = serializers.FloatField(allow_null=True)
    heldout_accuracy = serializers.FloatField(allow_null=True)
    ece = serializers.FloatField(allow_null=True)
    temperature = serializers.FloatField(allow_null=True)


class ProductionSerializer(serializers.Serializer):
    outcomes = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True)
    ece = serializers.FloatField(allow_null=True)
    brier = serializers.FloatField(allow_null=True)
    reliability = serializers.JSONField(allow_null=True)


class TrajectoryPointSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    n = serializers.IntegerField()
    accuracy = serializers.FloatField()
    ece = serializers.FloatField()
    brier = serializers.FloatField()


class EvolutionVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    ref = serializers.CharField()
    number = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    aliases = serializers.ListField(child=serializers.CharField())
    training = TrainingDataSerializer()
    production = ProductionSerializer()
    trajectory = TrajectoryPointSerializer(many=True)


class EvolutionSerializer(serializers.Serializer):
    model = serializers.CharField()
    window = serializers.CharField()
    versions = EvolutionVersionSerializer(many=True)


class TimelinePointSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    n_votes = serializers.IntegerField()
    shares = serializers.ListField(child=serializers.FloatField(), help_text="per label")
    agreement = serializers.FloatField(allow_null=True)
    alpha = serializers.FloatField(allow_null=True)
    n_items = serializers.IntegerField()


class TimelineSerializer(serializers.Serializer):
    project = serializers.IntegerField()
    project_name = serializers.CharField(allow_blank=True)
    window = serializers.CharField()
    labels = serializers.ListField(child=serializers.CharField())
    points = TimelinePointSerializer(many=True)


class PreferencePointSerializer(serializers.ModelSerializer):
    class Meta:
        model = PreferencePoint
        fields = ["id", "project", "window", "start", "n_votes", "counts", "n_consensus_votes",
                  "agreement", "n_items", "alpha", "computed_at"]  # fmt: skip


class AnnotatorPointSerializer(serializers.ModelSerializer):
    class Meta:
        model = AnnotatorPoint
        fields = ["id", "project", "annotator", "window", "start", "n_votes",
                  "n_consensus_votes", "n_agree", "log_lead_time_mean", "log_lead_time_sd",
                  "computed_at"]  # fmt: skip


class AnnotatorDriftSerializer(serializers.ModelSerializer):
    class Meta:
        model = AnnotatorDrift
        fields = ["id", "project", "annotator", "metric", "window", "n_points", "center",
                  "latest", "drifting", "direction", "signals", "last_signal_at", "since",
                  "updated_at"]  # fmt: skip


# -- views -----------------------------------------------------------------------------------


def _visible(request, model, **lookup) -> bool:
    """Whether the user may read some of ``model``'s rows matching ``lookup`` (a project
    they may not report on looks the same as one without points)."""
    return access.queryset_restrict(
        queryset=model.objects.filter(**lookup), user=request.user
    ).exists()


class _ChartView(APIView):
    """A read-only chart answer; ``queryset``'s model decides who may read it (through
    ``rlhf_platform.permissions.RolePermission`` and ``governance.access``)."""

    query_class: type[serializers.Serializer]

    def access_action(self) -> str:
        return "view"

    def query(self, request) -> dict:
        query = self.query_class(data=request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data


class AccuracyControlChartView(_ChartView):
    """Control chart of a version's model–human agreement (accuracy; or ECE, Brier) per
    window, from its metric points: centre ± 3σ of the baseline points, signals per rule."""

    queryset = MetricPoint.objects.all()
    query_class = AccuracyChartQuery

    @extend_schema(parameters=[AccuracyChartQuery], responses=ControlChartSerializer)
    def get(self, request):
        q = self.query(request)
        version = selectors.versions_monitored().filter(pk=q["version"]).first()
        if version is None:
            raise ValidationError({"version": ["no metric points for this version"]})
        return Response(
            charts.accuracy_control_chart(
                version=version, window=q["window"], metric=q["metric"],
                baseline=q.get("baseline"), rules=q.get("rules", (1,)),
            )
        )  # fmt: skip


class AgreementControlChartView(_ChartView):
    """Control chart of a project's annotator agreement (Krippendorff's α per window)."""

    queryset = PreferencePoint.objects.all()
    query_class = AgreementChartQuery

    @extend_schema(parameters=[AgreementChartQuery], responses=ControlChartSerializer)
    def get(self, request):
        q = self.query(request)
        if not _visible(request, PreferencePoint, project_id=q["project"]):
            raise ValidationError({"project": ["no preference points for this project"]})
        return Response(
            charts.agreement_control_chart(
                project_id=q["project"], window=q["window"], baseline=q.get("baseline"),
                rules=q.get("rules", (1,)),
            )
        )  # fmt: skip


class AnnotatorControlChartView(_ChartView):
    """One annotator's drift chart (agreement with consensus, or time per vote in ms)."""

    queryset = AnnotatorPoint.objects.all()
    query_class = AnnotatorChartQuery

    @extend_schema(parameters=[AnnotatorChartQuery], responses=ControlChartSerializer)
    def get(self, request):
        q = self.query(request)
        if not _visible(
            request, AnnotatorPoint, project_id=q["project"], annotator_id=q["annotator"]
        ):
            raise ValidationError({"annotator": ["no points for this annotator in this project"]})
        return Response(
            charts.annotator_control_chart(
                project_id=q["project"], annotator_id=q["annotator"], metric=q["metric"]
            )
        )


class ModelEvolutionView(_ChartView):
    """A registered model's versions compared: training data, held-out figures,
    production accuracy/ECE/Brier, latest reliability and trajectory per window."""

    queryset = MetricPoint.objects.all()
    query_class = EvolutionQuery

    @extend_schema(parameters=[EvolutionQuery], responses=EvolutionSerializer)
    def get(self, request):
        q = self.query(request)
        registered = RegisteredModel.objects.filter(name=q["model"]).first()
        if registered is None:
            raise ValidationError({"model": ["no such registered model"]})
        return Response(charts.model_evolution(registered_model=registered, window=q["window"]))


class PreferenceTimelineView(_ChartView):
    """How a project's human preferences move: choice shares, agreement and α per window."""

    queryset = PreferencePoint.objects.all()
    query_class = ProjectQuery

    @extend_schema(parameters=[ProjectQuery], responses=TimelineSerializer)
    def get(self, request):
        q = self.query(request)
        if not _visible(request, PreferencePoint, project_id=q["project"]):
            raise ValidationError({"project": ["no preference points for this project"]})
        return Response(charts.preference_timeline(project_id=q["project"], window=q["window"]))


class PreferencePointViewSet(RestrictedReadOnlyViewSet):
    """Pre-aggregated preference points per project and window."""

    queryset = PreferencePoint.objects.all()
    serializer_class = PreferencePointSerializer
    filterset_fields = ["project", "window"]


class AnnotatorPointViewSet(RestrictedReadOnlyViewSet):
    """Pre-aggregated annotator points (agreement with consensus, log time per vote)."""

    queryset = AnnotatorPoint.objects.all()
    serializer_class = AnnotatorPointSerializer
    filterset_fields = ["project", "annotator", "window"]


class AnnotatorDriftViewSet(RestrictedReadOnlyViewSet):
    """Annotator-drift verdicts per project, annotator and metric."""

    queryset = AnnotatorDrift.objects.all()
    serializer_class = AnnotatorDriftSerializer
    filterset_fields = ["project", "annotator", "metric", "drifting"]
