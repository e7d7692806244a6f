"""The OpenAPI schema documents every status code the API really answers.

:class:`AutoSchema` (``DEFAULT_SCHEMA_CLASS``) adds the standard error responses, each
with the one error shape (the ``Error`` component), to every operation from what the
view is: 400 where it takes input, 401 and 403 where it needs a user, 404 where it names
an object or pages a list, 415 where it takes a body, 429 where it is throttled.  Views
declare only what is particular to them with ``extend_schema`` — a 409 (``CONFLICT``), a
file download, a 202 for background work.
"""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class ErrorDetailSerializer(serializers.Serializer):
    """What went wrong: ``fields`` maps each bad field (``answer.rationale``) to reasons."""

    status = serializers.IntegerField()
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    request_id = serializers.CharField(allow_blank=True)


class ErrorSerializer(serializers.Serializer):
    """Every API error: ``{"error": {"status", "code", "message", "fields", "request_id"}}``."""

    error = ErrorDetailSerializer()

    class Meta:
        ref_name = "Error"


def error_response(description: str) -> OpenApiResponse:
    """An error answer in the shared shape, for ``extend_schema(responses={code: ...})``."""
    return OpenApiResponse(response=ErrorSerializer, description=description)


CONFLICT = error_response(
    "The request is valid but conflicts with the current state; `fields` names what."
)

STANDARD_ERRORS = {
    400: "Invalid input: `fields` names each bad field and the reason.",
    401: "No or invalid credentials.",
    403: "The user may not do this (or the CSRF check of a session failed).",
    404: "No such object visible to the user, or no such page of a list.",
    415: "The request body's media type is not accepted here.",
    429: "Too many requests; retry after the `Retry-After` header's seconds.",
}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema plus the error responses each operation can answer."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self.error_codes():
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(
                    error_response(STANDARD_ERRORS[code]), str(code), direction=direction
                )
        return dict(sorted(responses.items()))

    def error_codes(self) -> list[int]:
        """The standard error codes this operation can answer."""
        codes = []
        takes_body = self.method in WRITE_METHODS and self.get_request_serializer() is not None
        takes_query = any(p.get("in") == "query" for p in self._get_parameters())
        if takes_body or takes_query:
            codes.append(400)
        open_to_all = all(isinstance(p, permissions.AllowAny) for p in self.view.get_permissions())
        if not open_to_all:
            codes += [401, 403]
        names_object = "{" in self.path
        if names_object or self._is_list_view():
            codes.append(404)
        if takes_body:
            codes.append(415)
        if self.view.get_throttles():
            codes.append(429)
        return codes
