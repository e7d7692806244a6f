"""Model artifacts in Django storage: written file by file with their SHA-256, and read
back only when every file still has the hash recorded at registration.

Reading copies the verified bytes into a private temporary directory and loads from there,
so the bytes that were checked are the bytes that are loaded (no window between check and
use), with any storage backend.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.files.storage import default_storage

WEIGHTS = "model.safetensors"


class ArtifactCorrupted(Exception):
    """An artifact file is missing or no longer matches its recorded SHA-256."""


def _sha256_file(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def artifact_write(*, directory: Path, prefix: str) -> dict[str, Any]:
    """Copy a saved model directory into storage under ``prefix``.

    Returns ``{"path", "sha256" (of the weights), "files": {name: sha256}, "size_bytes"}``.
    """
    files: dict[str, str] = {}
    size = 0
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        name = f"{prefix}/{path.name}"
        with path.open("rb") as handle:
            saved = default_storage.save(name, File(handle))
        if saved != name:  # storage renamed it: the prefix was not fresh
            raise RuntimeError(f"artifact: {name} already exists in storage")
        files[path.name] = _sha256_file(path)
        size += path.stat().st_size
    if WEIGHTS not in files:
        raise RuntimeError(f"artifact: {WEIGHTS} is missing from {directory}")
    return {"path": prefix, "sha256": files[WEIGHTS], "files": files, "size_bytes": size}


def artifact_delete(*, prefix: str) -> None:
    """Remove every file stored under ``prefix`` (an unregistered run's leftovers)."""
    if not prefix:
        return
    try:
        _dirs, names = default_storage.listdir(prefix)
    except FileNotFoundError:
        return
    for name in names:
        default_storage.delete(f"{prefix}/{name}")
    local = Path(default_storage.path(prefix)) if hasattr(default_storage, "path") else None
    if local is not None and local.is_dir():
        shutil.rmtree(local, ignore_errors=True)


def artifact_checkout(*, prefix: str, files: dict[str, str]) -> tempfile.TemporaryDirectory:
    """A temporary directory holding the artifact's files, each checked against its
    recorded SHA-256; raises ``ArtifactCorrupted`` naming the first bad file."""
    tmp = tempfile.TemporaryDirectory(prefix="attune-model-")
    try:
        for name, expected in files.items():
            target = Path(tmp.name) / name
            sha = hashlib.sha256()
            try:
                with (
                    default_storage.open(f"{prefix}/{name}", "rb") as src,
                    target.open("wb") as dst,
                ):
                    for block in iter(lambda src=src: src.read(1 << 20), b""):
                        sha.update(block)
                        dst.write(block)
            except FileNotFoundError as exc:
                raise ArtifactCorrupted(f"{name}: missing from storage") from exc
            if sha.hexdigest() != expected:
                raise ArtifactCorrupted(
                    f"{name}: SHA-256 {sha.hexdigest()[:12]}… does not match the recorded "
                    f"{expected[:12]}…; refusing to load"
                )
    except BaseException:
        tmp.cleanup()
        raise
    return tmp
