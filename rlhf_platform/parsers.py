"""The API's JSON parser: any body it cannot take is a 400 naming where and why, never a 500."""

from __future__ import annotations

from rest_framework import exceptions, parsers
from rest_framework.parsers import get_encoding

from .validation import JSONInputError, json_parse


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, read through :func:`rlhf_platform.validation.json_parse`.

    DRF's own lets ``RecursionError`` out of very deep input (a 500) and passes NUL
    characters and lone surrogates on to fail at the database.  This one answers 400 in
    the error shape, naming the field (``answer.rationale``) or ``body`` for the whole text.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        raw = stream.read()
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise exceptions.ValidationError(
                {"body": [f"is not valid {encoding} (byte {exc.start})"]}
            ) from None
        try:
            return json_parse(text)
        except JSONInputError as exc:
            raise exceptions.ValidationError({exc.path or "body": [exc.reason]}) from None
