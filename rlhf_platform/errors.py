"""Exception types shared across apps, mapped to HTTP answers in one place."""


class Conflict(Exception):
    """The request is valid but conflicts with the current state (HTTP 409).

    The message starts with the field it concerns, ``"field: reason"``.
    """
