"""The RLHF loop's API under ``/api/models/loop/{project_id}/``: thin views over
``models_registry.loop``.  Reading needs the project's ``report`` permission, writing its
``change`` (checked by ``governance.access`` through ``loop.project_loop_access``)."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.response import Response

from models_registry import loop
from rlhf_platform.api import RestrictedViewSetMixin
from rlhf_platform.openapi import error_response

from . import loop_serializers as s


class LoopViewSet(RestrictedViewSetMixin, viewsets.GenericViewSet):
    """A project's RLHF loop: settings, passes, chart data, error memory, retraining."""

    serializer_class = s.LoopSettingsSerializer

    def get_queryset(self):  # every route names one project, checked in _project
        return loop.LoopSettings.objects.none()

    def _project(self, action: str = "report"):
        project = loop.project_loop_access(
            user=self.request.user, project_id=self.kwargs["project_id"], action="report"
        )
        if project is None:
            raise Http404
        if action != "report":
            from governance import access

            access.require(user=self.request.user, action=action, obj=project)
        return project

    def _state(self, project):
        settings = loop.loop_settings_get(project=project)
        version = loop.loop_version(loop=settings)
        return s.LoopStateSerializer(
            {
                "settings": settings,
                "version": version.ref if version else None,
                "summary": loop.loop_summary(project=project),
            }
        ).data

    @extend_schema(responses=s.LoopStateSerializer)
    def retrieve(self, request, project_id: int):
        """The loop's settings, the version its alias points at, and how items are routed."""
        return Response(self._state(self._project()))

    @extend_schema(request=s.LoopSettingsUpdateSerializer, responses=s.LoopStateSerializer)
    def partial_update(self, request, project_id: int):
        """Change loop settings — the kill switch included (audited)."""
        project = self._project("change")
        data = s.LoopSettingsUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        loop.loop_settings_update(project=project, user=request.user, **data.validated_data)
        return Response(self._state(project))

    @extend_schema(responses=s.LoopRunSerializer(many=True))
    def runs(self, request, project_id: int):
        """The passes, newest first."""
        page = self.paginate_queryset(loop.loop_run_list(project=self._project()))
        return self.get_paginated_response(s.LoopRunSerializer(page, many=True).data)

    @extend_schema(responses=s.LoopChartSerializer)
    def chart(self, request, project_id: int):
        """The passes over time (the loop page's chart)."""
        return Response(loop.loop_chart_data(project=self._project()))

    @extend_schema(
        request=None,
        responses={
            202: None,
            400: error_response("The loop cannot run: e.g. its alias names no version."),
        },
    )
    def run(self, request, project_id: int):
        """Queue a pass on a worker now."""
        loop.loop_run_request(project=self._project("change"), user=request.user)
        return Response(status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=s.ModelErrorSerializer(many=True))
    def errors(self, request, project_id: int):
        """The error memory: the model's suggestion against the final human consensus."""
        page = self.paginate_queryset(loop.loop_error_list(project=self._project()))
        return self.get_paginated_response(s.ModelErrorSerializer(page, many=True).data)

    @extend_schema(
        request=s.RetrainingCreateSerializer, responses={201: s.RetrainingRequestSerializer}
    )
    def retrain(self, request, project_id: int):
        """One action: a snapshot with the error memory oversampled, and a training job."""
        project = self._project("export")
        data = s.RetrainingCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        created = loop.retraining_request_create(
            project=project, user=request.user, **data.validated_data
        )
        return Response(s.RetrainingRequestSerializer(created).data, status=status.HTTP_201_CREATED)
