"""Field encryption: tokens instead of clear text, every key decrypts, rotation to the first key."""

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from rlhf_platform.crypto import (
    EncryptedTextField,
    FieldDecryptionError,
    secret_decrypt,
    secret_encrypt,
    secret_mask,
    secret_rotate,
)

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_round_trip_and_no_clear_text():
    token = secret_encrypt(text="sk-very-secret")
    assert "sk-very-secret" not in token
    assert secret_decrypt(token=token) == "sk-very-secret"
    # randomised: the same text gives another token each time
    assert secret_encrypt(text="sk-very-secret") != token


def test_rotation_keeps_old_tokens_readable_until_rotated():
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        token = secret_encrypt(text="rationale")
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        assert secret_decrypt(token=token) == "rationale"
        rotated = secret_rotate(token=token)
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        assert secret_decrypt(token=rotated) == "rationale"
        with pytest.raises(FieldDecryptionError):
            secret_decrypt(token=token)


def test_field_stores_tokens_and_reads_clear_text():
    field = EncryptedTextField()
    stored = field.get_prep_value("comment with an e-mail a@b.org")
    assert "a@b.org" not in stored
    assert field.from_db_value(stored, None, None) == "comment with an e-mail a@b.org"
    assert field.get_prep_value("") == ""
    assert field.get_prep_value(None) is None


def test_mask_shows_only_the_tail():
    assert secret_mask(text="sk-abcdefghijkl") == "••••••••ijkl"
    assert "abc" not in secret_mask(text="sk-abc")
