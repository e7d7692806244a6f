"""Field-level encryption: Fernet tokens under ``settings.FIELD_ENCRYPTION_KEYS`` (MultiFernet).

Secrets (provider API keys) and sensitive free text (rationales, comments marked sensitive)
are stored only as Fernet tokens, so a database dump or a raw table read shows no clear
text.  The first key encrypts, every key decrypts; ``manage.py field_encryption_rotate``
re-encrypts every :class:`EncryptedTextField` under the first key so an old key can then be
dropped.  Tokens are randomised: an encrypted column cannot be filtered or indexed by value.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models, transaction
from django.db.models import Value
from django.db.models.functions import Cast
from django.dispatch import receiver


class FieldDecryptionError(Exception):
    """A stored token does not decrypt under any configured key (a key was dropped too early)."""


@functools.cache
def _fernet() -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in settings.FIELD_ENCRYPTION_KEYS])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS: every key must be a Fernet key (urlsafe base64 of 32 bytes)"
        ) from exc


@receiver(setting_changed)
def _keys_changed(*, setting, **kwargs) -> None:
    if setting == "FIELD_ENCRYPTION_KEYS":
        _fernet.cache_clear()


def secret_encrypt(*, text: str) -> str:
    """The Fernet token (text) of ``text`` under the first configured key."""
    return _fernet().encrypt(text.encode()).decode()


def secret_decrypt(*, token: str) -> str:
    """The clear text of a token made under any configured key."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise FieldDecryptionError(
            "a stored value does not decrypt under FIELD_ENCRYPTION_KEYS "
            "(was a key removed before field_encryption_rotate ran?)"
        ) from exc


def secret_rotate(*, token: str) -> str:
    """The same clear text re-encrypted under the first key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise FieldDecryptionError("a stored value does not decrypt under any key") from exc


def secret_mask(*, text: str, visible: int = 4) -> str:
    """``"••••abcd"``: what a UI or an API may show of a secret after it was entered."""
    if len(text) <= visible * 2:
        return "•" * 8
    return "•" * 8 + text[-visible:]


class EncryptedTextField(models.TextField):
    """A text column stored as a Fernet token; Python code sees the clear text.

    The empty string is stored as is (nothing to hide, and it keeps ``blank=True`` forms
    simple).  Lookups other than ``isnull`` and equality with ``""`` are meaningless on it.
    """

    description = "Text encrypted at rest (Fernet)"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return secret_decrypt(token=value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return secret_encrypt(text=str(value))


def encrypted_fields() -> Iterator[tuple[type[models.Model], EncryptedTextField]]:
    """Every (model, field) pair of the installed apps that stores encrypted text."""
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                yield model, field


def field_encryption_rotate(*, batch_size: int = 500) -> dict[str, int]:
    """Re-encrypt every encrypted value under the first key; returns rows per model field.

    Raw tokens are rotated (``MultiFernet.rotate``) without the clear text passing through
    model code; each batch is its own transaction, so an interrupted run can simply be
    repeated (rotating a token already under the first key is harmless).
    """
    counts: dict[str, int] = {}
    for model, field in encrypted_fields():
        manager = model._base_manager
        # Cast to a plain TextField: the raw token, not passed through from_db_value.
        raw = Cast(field.attname, output_field=models.TextField())
        done, last_pk = 0, None
        while True:
            rows = manager.exclude(**{field.attname: ""}).exclude(
                **{f"{field.attname}__isnull": True}
            )
            if last_pk is not None:
                rows = rows.filter(pk__gt=last_pk)
            batch = list(rows.order_by("pk").values_list("pk", raw)[:batch_size])
            if not batch:
                break
            with transaction.atomic(using=manager.db):
                for pk, token in batch:
                    # A Value with a plain TextField skips get_prep_value: stored as given.
                    manager.filter(pk=pk).update(
                        **{
                            field.attname: Value(
                                secret_rotate(token=token), output_field=models.TextField()
                            )
                        }
                    )
            done += len(batch)
            last_pk = batch[-1][0]
        counts[f"{model._meta.label}.{field.name}"] = done
    return counts
