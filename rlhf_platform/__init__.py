"""Attune's project package (named rlhf_platform: a package called ``platform`` would shadow
the standard library's ``platform`` module, which Django and Celery import)."""

from .celery import app as celery_app

__all__ = ["celery_app"]
