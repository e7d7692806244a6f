"""The audit chain's rules, shared by the writer, the verifier and the offline archive check.

Each event is one RFC 8785 (JSON Canonicalization Scheme) text, stored verbatim in
``AuditEvent.canonical``; its ``hash`` is HMAC-SHA256 over that text with a key held outside
the database (``settings.AUDIT_HMAC_KEYS``), and the text names the previous event's hash, so
the events form a keyed chain.  The ``before``/``after`` JSON columns are copies for
querying: verification reads the stored text, never their round trip through ``jsonb``, and
only checks that they still mean the same.

Nothing here touches the database except :func:`audit_maintenance` (and the SQLite function it
drives), so ``audit_archive_verify`` runs with the key alone.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as dt
import decimal
import hashlib
import hmac
import ipaddress
import json
import math
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import rfc8785

GENESIS_HASH = "0" * 64
# Bumped if the payload's shape ever changes, so old and new events stay verifiable.
PAYLOAD_VERSION = 2
_SAFE_INT = 2**53 - 1  # I-JSON / RFC 8785: larger integers are not exact in every reader

# The event's columns that the signed payload repeats, and so must match it.
PAYLOAD_COLUMNS = (
    "sequence",
    "timestamp",
    "actor_id",
    "actor_username",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "request_id",
    "client_ip",
    "prev_hash",
    "key_id",
)


# --- Canonical form ------------------------------------------------------------------------


def _text_clean(text: str) -> str:
    """Text that UTF-8 and PostgreSQL can hold: lone surrogates and NUL become U+FFFD."""
    if text.isascii():
        return text.replace("\x00", "\ufffd")
    # Joins valid surrogate pairs, replaces lone ones (which UTF-8 cannot encode).
    text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text.replace("\x00", "\ufffd")


def audit_value_normalise(value: Any) -> Any:
    """The payload as JSON values that RFC 8785 and PostgreSQL ``jsonb`` both accept.

    The audit trail records what happened rather than refusing the change it belongs to, so
    values JSON cannot hold are written as unambiguous text: NaN and ±infinity as ``"NaN"``,
    ``"Infinity"``, ``"-Infinity"``; integers beyond ±(2**53 − 1) as their digits; Decimal as
    its exact text; dates, times and datetimes in ISO 8601; durations in ISO 8601; UUIDs and
    lazy strings as text; sets sorted.  Lone surrogates and NUL become U+FFFD.  Anything else
    (a model instance, bytes) is a programming error and raises ``TypeError``.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value) if -_SAFE_INT <= value <= _SAFE_INT else str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        return _text_clean(str(value))
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            text = _key_text(key)
            if text in out:
                raise TypeError(f"audit payload: key {text!r} appears twice once keys are text")
            out[text] = audit_value_normalise(item)
        return out
    if isinstance(value, list | tuple):
        return [audit_value_normalise(item) for item in value]
    if isinstance(value, set | frozenset):
        items = [audit_value_normalise(item) for item in value]
        return sorted(items, key=lambda item: rfc8785.dumps(item))
    return _scalar_text(value)


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return _text_clean(str(key))
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    raise TypeError(f"audit payload: object keys must be text or integers, not {type(key)!r}")


def _scalar_text(value: Any) -> str:
    from django.utils.duration import duration_iso_string
    from django.utils.functional import Promise

    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return duration_iso_string(value)
    if isinstance(value, uuid.UUID | Promise):
        return _text_clean(str(value))
    raise TypeError(
        f"audit payload: {type(value).__name__} is not JSON; record its text or id instead"
    )


def canonical_text(value: Any) -> str:
    """RFC 8785 canonical JSON of an already-normalised value: one text per value."""
    return rfc8785.dumps(value).decode("utf-8")


def timestamp_text(value: dt.datetime) -> str:
    """A timestamp as fixed-width UTC ISO 8601 with microseconds (what the payload holds)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ip_text(value: str | None) -> str | None:
    """An IP address in the compressed form the database stores (IPv6 lower-case, short)."""
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return _text_clean(value)


def json_same(left: Any, right: Any) -> bool:
    """Whether two decoded JSON values are the same JSON value.

    Numbers compare by their double value (``jsonb`` may give ``1e16`` back as an integer
    and ``1.5e300`` as 301 digits); booleans never equal numbers; object key order is free.
    """
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        try:
            return float(left) == float(right)
        except OverflowError:
            return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_same(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_same, left, right))
    return type(left) is type(right) and left == right


# --- Keys and signatures -------------------------------------------------------------------


def audit_keys() -> tuple[str, Mapping[str, bytes]]:
    """The current signing key id and every known key (``settings.AUDIT_HMAC_KEYS``)."""
    from django.conf import settings

    keys: Mapping[str, bytes] = settings.AUDIT_HMAC_KEYS
    return next(iter(keys)), keys


def mac_hex(key: bytes, text: str) -> str:
    """HMAC-SHA256 of a text (UTF-8), hex."""
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def mac_check(keys: Mapping[str, bytes], key_id: str, text: str, mac: str) -> str | None:
    """Why ``mac`` is not the HMAC of ``text`` under key ``key_id``, or None when it is."""
    key = keys.get(key_id)
    if key is None:
        return f"signed with key id {key_id!r}, which is not in AUDIT_HMAC_KEYS"
    if not hmac.compare_digest(mac_hex(key, text), mac):
        return "HMAC does not match (edited, forged, or signed with another key)"
    return None


def document_sign(document: dict[str, Any]) -> dict[str, Any]:
    """A small JSON document (checkpoint, archive manifest) with the current key id and HMAC."""
    key_id, keys = audit_keys()
    body = {**document, "key_id": key_id}
    return {**body, "mac": mac_hex(keys[key_id], canonical_text(body))}


def document_check(document: Mapping[str, Any], keys: Mapping[str, bytes]) -> str | None:
    """Why a signed document does not verify, or None when it does."""
    body = {name: value for name, value in document.items() if name != "mac"}
    if not isinstance(document.get("mac"), str) or not isinstance(body.get("key_id"), str):
        return "not signed (no key_id or mac)"
    try:
        text = canonical_text(body)
    except (rfc8785.CanonicalizationError, TypeError) as exc:
        return f"not canonical JSON ({exc})"
    return mac_check(keys, body["key_id"], text, document["mac"])


# --- Events --------------------------------------------------------------------------------


def event_payload(
    *,
    sequence: int,
    timestamp: dt.datetime,
    actor_id: int | None,
    actor_username: str,
    action: str,
    object_type: str,
    object_id: str,
    before: Any,
    after: Any,
    request_id: str,
    client_ip: str | None,
    prev_hash: str,
    key_id: str,
) -> dict[str, Any]:
    """Everything an event states, as normalised JSON values (what its canonical text holds)."""
    return {
        "v": PAYLOAD_VERSION,
        "sequence": sequence,
        "timestamp": timestamp_text(timestamp),
        "actor_id": actor_id,
        "actor_username": _text_clean(actor_username),
        "action": _text_clean(action),
        "object_type": _text_clean(object_type),
        "object_id": _text_clean(object_id),
        "before": audit_value_normalise(before),
        "after": audit_value_normalise(after),
        "request_id": _text_clean(request_id),
        "client_ip": ip_text(client_ip),
        "prev_hash": prev_hash,
        "key_id": key_id,
    }


def event_check(row: Mapping[str, Any], keys: Mapping[str, bytes]) -> str | None:
    """Why a stored, signed event does not verify, or None when it does.

    The HMAC is checked over the stored canonical text; then every column that the text
    repeats must still say the same, so an edit to either the text or a column is caught.
    """
    reason = mac_check(keys, row["key_id"], row["canonical"], row["hash"])
    if reason is not None:
        return reason
    try:
        payload = json.loads(row["canonical"])
    except ValueError:
        return "canonical payload is not JSON"
    for name in PAYLOAD_COLUMNS:
        if not _column_matches(name, row[name], payload.get(name)):
            return f"column {name!r} differs from the signed payload (edited)"
    return None


def _column_matches(name: str, stored: Any, signed: Any) -> bool:
    if name == "timestamp":
        return isinstance(signed, str) and stored == dt.datetime.fromisoformat(signed)
    if name == "client_ip":
        return ip_text(stored) == signed
    if name in ("before", "after"):
        return json_same(stored, signed)
    return type(stored) is type(signed) and stored == signed


def legacy_row_text(row: Mapping[str, Any]) -> str:
    """One unsigned (pre-HMAC) event as canonical text, for the digest that seals them."""
    values = {name: row[name] for name in (*PAYLOAD_COLUMNS[:-1], "hash")}
    values["timestamp"] = timestamp_text(values["timestamp"])
    values["client_ip"] = ip_text(values["client_ip"])
    return canonical_text(audit_value_normalise(values))


# --- The one sanctioned way to remove rows -------------------------------------------------

_maintenance = contextvars.ContextVar("audit_maintenance", default=False)


@contextlib.contextmanager
def audit_maintenance(*, using: str = "default") -> Iterator[None]:
    """Let the current transaction DELETE or TRUNCATE audit rows (prune; the test flush).

    PostgreSQL: sets ``attune.audit_maintenance`` for this transaction only, which the
    append-only triggers read.  SQLite: flips the flag that the ``attune_audit_maintenance()``
    SQL function (registered on each connection) reports to the triggers.
    """
    from django.db import DatabaseError, connections

    connection = connections[using]
    if connection.vendor == "postgresql":
        if not connection.in_atomic_block:
            raise RuntimeError("audit_maintenance needs a transaction (transaction.atomic)")
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL attune.audit_maintenance = 'on'")
    token = _maintenance.set(True)
    try:
        yield
    finally:
        _maintenance.reset(token)
        if connection.vendor == "postgresql" and connection.in_atomic_block:
            # After an error the transaction is aborted and will roll back, setting and all.
            with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
                cursor.execute("SET LOCAL attune.audit_maintenance = 'off'")


def sqlite_maintenance_function_register(sender, connection, **kwargs) -> None:
    """``connection_created`` receiver: give SQLite's triggers ``attune_audit_maintenance()``.

    A client without it (the sqlite3 shell) gets "no such function" from the triggers, so
    it can neither update nor delete audit rows.
    """
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "attune_audit_maintenance", 0, lambda: int(_maintenance.get())
        )


# --- Checkpoints and archives (files) ------------------------------------------------------


def signed_file_write(path: Path, document: dict[str, Any]) -> Path:
    """Write a signed JSON document atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def checkpoints_read(directory: Path) -> list[tuple[Path, dict[str, Any] | None]]:
    """Every checkpoint file in a directory, by name (None for an unreadable one)."""
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob("checkpoint-*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            document = None
        found.append((path, document if isinstance(document, dict) else None))
    return found


def archive_line(row: Mapping[str, Any]) -> str:
    """One event as a line of an archive file: its stored signed text and chain fields."""
    line = {
        "sequence": row["sequence"],
        "prev_hash": row["prev_hash"],
        "hash": row["hash"],
        "key_id": row["key_id"],
        "canonical": row["canonical"],
    }
    if not row["canonical"]:  # an unsigned (pre-HMAC) event: keep its content too
        line["legacy"] = json.loads(legacy_row_text(row))
    return json.dumps(line, ensure_ascii=False, sort_keys=True)


@dataclasses.dataclass(frozen=True)
class ArchiveReport:
    """The result of checking archive files offline."""

    checked: int
    legacy: int
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def archive_manifest_path(path: Path) -> Path:
    """The manifest of an archive, given either the manifest or its JSONL file."""
    if path.name.endswith(".manifest.json"):
        return path
    return path.with_name(path.name.removesuffix(".jsonl") + ".manifest.json")


def archives_verify(paths: Iterable[Path], keys: Mapping[str, bytes]) -> ArchiveReport:
    """Check archive files with the HMAC keys alone (no database).

    Each manifest's signature, its file's SHA-256, every event's HMAC and link, the count,
    the first ``prev_hash`` and the last hash; several archives must also join end to end.
    """
    manifests = []
    for path in paths:
        manifest_path = archive_manifest_path(Path(path))
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return ArchiveReport(0, 0, f"{manifest_path}: cannot read the manifest ({exc})")
        reason = document_check(manifest, keys)
        if reason is not None:
            return ArchiveReport(0, 0, f"{manifest_path}: manifest {reason}")
        manifests.append((manifest_path, manifest))
    manifests.sort(key=lambda item: item[1].get("first_sequence", 0))
    checked = legacy = 0
    previous = None
    for manifest_path, manifest in manifests:
        if previous is not None and manifest["first_prev_hash"] != previous["last_hash"]:
            return ArchiveReport(
                checked, legacy, f"{manifest_path}: does not continue the archive before it"
            )
        try:
            result = _archive_file_verify(manifest_path, manifest, keys)
        except (KeyError, TypeError, ValueError) as exc:
            result = f"malformed ({exc!r})"
        if isinstance(result, str):
            return ArchiveReport(checked, legacy, f"{manifest_path}: {result}")
        checked += result[0]
        legacy += result[1]
        previous = manifest
    return ArchiveReport(checked, legacy, None)


def _archive_file_verify(
    manifest_path: Path, manifest: Mapping[str, Any], keys: Mapping[str, bytes]
) -> tuple[int, int] | str:
    path = manifest_path.parent / manifest["file"]
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot read ({exc})"
    if hashlib.sha256(data).hexdigest() != manifest["content_sha256"]:
        return "SHA-256 differs from the signed manifest (file edited or replaced)"
    expected_prev, expected_sequence = manifest["first_prev_hash"], manifest["first_sequence"]
    checked = legacy = 0
    for line in data.decode("utf-8").splitlines():
        event = json.loads(line)
        where = f"event sequence={event.get('sequence')}"
        if event["sequence"] != expected_sequence:
            return f"{where}: expected sequence {expected_sequence} (event missing or moved)"
        if event["prev_hash"] != expected_prev:
            return f"{where}: prev_hash does not match the previous event's hash"
        if event["canonical"]:
            reason = mac_check(keys, event["key_id"], event["canonical"], event["hash"])
            payload = json.loads(event["canonical"])
            if reason is None and (
                payload.get("sequence") != event["sequence"]
                or payload.get("prev_hash") != event["prev_hash"]
            ):
                reason = "sequence or prev_hash differs from the signed payload"
            if reason is not None:
                return f"{where}: {reason}"
        else:
            legacy += 1  # unsigned: covered by the link and the manifest's file hash only
        checked += 1
        expected_prev, expected_sequence = event["hash"], expected_sequence + 1
    if checked != manifest["count"] or expected_sequence - 1 != manifest["last_sequence"]:
        return f"holds {checked} events, the manifest says {manifest['count']}"
    if expected_prev != manifest["last_hash"]:
        return "last hash differs from the signed manifest"
    return checked, legacy
