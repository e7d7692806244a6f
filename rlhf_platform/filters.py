"""Filter types shared by the list pages and the API (django-filter)."""

from __future__ import annotations

import datetime as dt

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField


class UTCDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time that still exists once converted to UTC.

    ``0001-01-01T00:00:00+02:00`` is a valid ISO date-time whose UTC instant falls before
    year 1, so the database adapter raised ``OverflowError`` (a 500) when querying with
    it; it is refused here instead, naming the supported range.
    """

    default_error_messages = {
        "out_of_range": "is outside the supported range 0001-01-01T00:00:00Z to "
        "9999-12-31T23:59:59Z once converted to UTC",
    }

    def to_python(self, value):
        value = super().to_python(value)
        if value is not None and value.tzinfo is not None:
            try:
                value.astimezone(dt.UTC)
            except OverflowError:
                raise ValidationError(
                    self.error_messages["out_of_range"], code="out_of_range"
                ) from None
        return value


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    """``IsoDateTimeFilter`` that refuses instants outside the representable UTC range."""

    field_class = UTCDateTimeField
