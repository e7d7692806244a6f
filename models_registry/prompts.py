"""Prompt sets: typed, imported (CSV or JSONL) or generated from topics and a template
through a provider, Distilabel-style — seed prompts per topic, then variations of each
seed, near-duplicates removed — and reviewed (keep or discard) before generation uses them.

Near-duplicates: texts are normalised (case, punctuation, spaces) and hashed, so exact
repeats are never stored twice; then TF-IDF vectors of word 1–2-grams (scikit-learn) are
compared by cosine similarity (every word counts, one-character ones too: "item 1" and
"item 2" differ), and a prompt at least ``dedupe_threshold`` similar to an
earlier one is kept only as a record, marked ``duplicate`` with what it repeats.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import string
import threading
import unicodedata
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max, Q, QuerySet

from governance import access
from governance.outbox import outbox_task_enqueue
from governance.services import audit_event_record
from rlhf_platform.errors import Conflict
from rlhf_platform.validation import text_problem

from .generation_models import Prompt, PromptSet, Provider
from .openai_compat import ChatRequest, chat_stream
from .providers import provider_endpoint

logger = logging.getLogger(__name__)

PROMPT_MAX_CHARS = 20_000
PROMPTS_MAX = 50_000
IMPORT_MAX_BYTES = 20 * 1024 * 1024
MAX_REPORTED_ERRORS = 100

DEFAULT_TEMPLATE = (
    "Write {n} different, self-contained requests that a user might send to an AI "
    "assistant about {topic}. Vary their length, difficulty and style. Answer with the "
    "requests only, one per line, without numbering."
)
VARIATION_TEMPLATE = (
    "Rewrite the following request in {n} different ways that keep its intent but change "
    "its wording, detail or difficulty. Answer with the rewritten requests only, one per "
    "line, without numbering.\n\nRequest: {prompt}"
)
# name: (default, type, lowest, highest)
GENERATION_SETTINGS: dict[str, tuple[Any, type, float, float]] = {
    "seeds_per_topic": (5, int, 1, 50),
    "variations_per_seed": (2, int, 0, 10),
    "dedupe_threshold": (0.9, float, 0.5, 1.0),
    "temperature": (0.9, float, 0.0, 2.0),
    "max_tokens": (512, int, 16, 8192),
    "concurrency": (4, int, 1, 64),
}

_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")
# Every word a token, one-character ones too (scikit-learn's default drops them).
WORD = r"(?u)\b\w+\b"
_LIST_MARK = re.compile(r"^\s*(?:[-*•]+|\(?\d{1,3}[.)\]:]|\(?[a-zA-Z][.)]\s)\s*")


def prompt_normalise(text: str) -> str:
    """Lower-case, NFKC, punctuation removed, spaces collapsed: the text dedupe compares."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", text)).strip()


def prompt_hash(text: str) -> str:
    """The identity of a prompt in its set (SHA-256 of the normalised text)."""
    return hashlib.sha256(prompt_normalise(text).encode()).hexdigest()


def near_duplicates(
    texts: list[str], *, threshold: float, earlier: list[str] = ()
) -> list[tuple[int, float] | None]:
    """For each of ``texts``: None when it is new, else ``(index, similarity)`` of the
    first earlier text (in ``earlier`` + ``texts``, in that order) that it repeats at cosine
    similarity ≥ ``threshold`` over TF-IDF word 1–2-grams.  An index < len(earlier) names an
    earlier text; indices past it name ``texts[index - len(earlier)]``."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    corpus = [prompt_normalise(t) for t in [*earlier, *texts]]
    if not texts:
        return []
    try:
        matrix = TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, token_pattern=WORD
        ).fit_transform(corpus)
    except ValueError:  # every text is empty after normalisation
        return [None] * len(texts)
    similarity = (matrix @ matrix.T).tocsr()
    kept = list(range(len(earlier)))
    out: list[tuple[int, float] | None] = []
    for i in range(len(earlier), len(corpus)):
        row = similarity.getrow(i).toarray().ravel()
        best, best_score = None, 0.0
        for j in kept:
            if row[j] >= threshold and row[j] > best_score:
                best, best_score = j, float(row[j])
        if best is None:
            kept.append(i)
            out.append(None)
        else:
            out.append((best, round(best_score, 4)))
    return out


def _prompt_text_problem(text: Any) -> str | None:
    if not isinstance(text, str):
        return "must be text"
    if not text.strip():
        return "empty"
    if len(text) > PROMPT_MAX_CHARS:
        return f"longer than {PROMPT_MAX_CHARS} characters"
    return text_problem(text)


def _set_name_clean(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError({"name": ["required"]})
    if len(name) > 200 or (problem := text_problem(name)):
        raise ValidationError({"name": [problem if name and len(name) <= 200 else "at most 200"]})
    return name.strip()


def _prompts_add(prompt_set: PromptSet, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert prompts (dicts with text, topic, origin, status, parent_id?) into a set:
    exact repeats (after normalisation) are skipped.  Returns counts."""
    start = (prompt_set.prompts.aggregate(p=Max("position"))["p"] or 0) + 1
    existing = set(prompt_set.prompts.values_list("text_sha256", flat=True))
    objs = []
    for row in rows:
        digest = prompt_hash(row["text"])
        if digest in existing:
            continue
        existing.add(digest)
        objs.append(
            Prompt(prompt_set=prompt_set, text_sha256=digest, position=start + len(objs), **row)
        )
    Prompt.objects.bulk_create(objs, batch_size=1000)
    return {"added": len(objs), "repeated": len(rows) - len(objs)}


@transaction.atomic
def prompt_set_create(*, user, name: str, prompts: list[str], description: str = "") -> PromptSet:
    """A set of typed prompts, all kept (audited with counts, not texts)."""
    name = _set_name_clean(name)
    if not isinstance(prompts, list) or not prompts:
        raise ValidationError({"prompts": ["give at least one prompt"]})
    if len(prompts) > PROMPTS_MAX:
        raise ValidationError({"prompts": [f"at most {PROMPTS_MAX} prompts"]})
    errors = {
        f"prompts[{i}]": [problem]
        for i, text in enumerate(prompts)
        if (problem := _prompt_text_problem(text))
    }
    if errors:
        raise ValidationError(errors)
    prompt_set = PromptSet.objects.create(
        name=name, description=description, source=PromptSet.Source.TYPED, created_by=user
    )
    rows = [
        {"text": t.strip(), "origin": Prompt.Origin.TYPED, "status": Prompt.Status.KEPT}
        for t in prompts
    ]
    counts = _prompts_add(prompt_set, rows)
    audit_event_record(
        action="prompt_set.create",
        obj=prompt_set,
        after={"name": name, "source": "typed", **counts},
    )
    return prompt_set


def prompt_rows_parse(*, file: IO[bytes], filename: str = "") -> list[dict[str, Any]]:
    """Rows ``{"text", "topic"}`` of a CSV (a ``prompt`` column; ``topic`` optional) or JSONL
    (``{"prompt": ..., "topic"?: ...}`` per line) file; every bad row is reported with its
    line number, and any bad row rejects the file."""
    raw = file.read(IMPORT_MAX_BYTES + 1)
    if len(raw) > IMPORT_MAX_BYTES:
        raise ValidationError({"file": [f"larger than {IMPORT_MAX_BYTES // (1024 * 1024)} MB"]})
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise ValidationError({"file": [f"not UTF-8 text (byte {exc.start})"]}) from exc
    is_csv = filename.lower().endswith(".csv") or (
        not filename.lower().endswith((".jsonl", ".json", ".ndjson"))
        and not text.lstrip().startswith("{")
    )
    rows: list[dict[str, Any]] = []
    errors: list[str] = []

    def add(line: int, prompt: Any, topic: Any) -> None:
        problem = _prompt_text_problem(prompt)
        if problem is None and topic is not None and not isinstance(topic, str):
            problem = "topic: must be text"
        elif problem is None and topic and (len(topic) > 200 or text_problem(topic)):
            problem = "topic: at most 200 characters of text"
        if problem:
            errors.append(
                f"line {line}: prompt: {problem}"
                if "topic" not in problem
                else f"line {line}: {problem}"
            )
        else:
            rows.append({"text": prompt.strip(), "topic": (topic or "").strip()})

    if is_csv:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        names = [h.strip().lower() for h in header or []]
        if "prompt" not in names:
            raise ValidationError({"file": ["line 1: the CSV needs a 'prompt' column"]})
        p_col, t_col = names.index("prompt"), names.index("topic") if "topic" in names else None
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if p_col >= len(row):
                errors.append(f"line {line}: prompt: missing")
                continue
            add(line, row[p_col], row[t_col] if t_col is not None and t_col < len(row) else "")
            if len(errors) >= MAX_REPORTED_ERRORS:
                break
    else:
        for line, content in enumerate(text.splitlines(), start=1):
            if not content.strip():
                continue
            try:
                record = json.loads(content)
            except ValueError as exc:
                errors.append(f"line {line}: not JSON ({exc.msg})")
                continue
            if not isinstance(record, dict):
                errors.append(f"line {line}: must be a JSON object with a 'prompt'")
                continue
            if "prompt" not in record:
                errors.append(f"line {line}: prompt: missing")
                continue
            add(line, record["prompt"], record.get("topic"))
            if len(errors) >= MAX_REPORTED_ERRORS:
                break
    if errors:
        raise ValidationError({"file": errors})
    if not rows:
        raise ValidationError({"file": ["holds no prompts"]})
    if len(rows) > PROMPTS_MAX:
        raise ValidationError({"file": [f"more than {PROMPTS_MAX} prompts"]})
    return rows


@transaction.atomic
def prompt_set_import(
    *, user, name: str, file: IO[bytes], filename: str = "", description: str = ""
) -> PromptSet:
    """A set from a CSV or JSONL file, all-or-nothing (see :func:`prompt_rows_parse`);
    every prompt is kept (audited)."""
    name = _set_name_clean(name)
    parsed = prompt_rows_parse(file=file, filename=filename)
    prompt_set = PromptSet.objects.create(
        name=name, description=description, source=PromptSet.Source.IMPORTED, created_by=user
    )
    rows = [
        {**row, "origin": Prompt.Origin.IMPORTED, "status": Prompt.Status.KEPT} for row in parsed
    ]
    counts = _prompts_add(prompt_set, rows)
    audit_event_record(
        action="prompt_set.import",
        obj=prompt_set,
        after={"name": name, "source": "imported", "rows": len(parsed), **counts},
    )
    return prompt_set


def _template_check(template: str) -> None:
    """Only ``{topic}`` and ``{n}`` may be placeholders (no attribute or index access)."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValidationError({"template": [f"not a valid template ({exc})"]}) from exc
    bad = sorted({f for f in fields if f not in ("topic", "n")})
    if bad:
        raise ValidationError(
            {"template": [f"unknown placeholder(s): {', '.join(bad)}; use {{topic}} and {{n}}"]}
        )
    if "topic" not in fields:
        raise ValidationError({"template": ["must contain {topic}"]})


def settings_validate(
    *, values: dict[str, Any] | None, spec: dict[str, tuple[Any, type, float, float]], field: str
) -> dict[str, Any]:
    """Numeric settings ``{name: (default, int | float, lowest, highest)}`` with defaults
    filled in (a None default means "not set"); a ValidationError names each bad one as
    ``<field>.<name>``.  Shared by prompt generation and generation jobs."""
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise ValidationError({field: ["must be an object"]})
    errors = {f"{field}.{k}": ["unknown setting"] for k in values if k not in spec}
    clean: dict[str, Any] = {}
    for name, (default, kind, low, high) in spec.items():
        value = values.get(name, default)
        if value is None and default is None:
            clean[name] = None
            continue
        ok = (int,) if kind is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok) or value != value:
            errors[f"{field}.{name}"] = [
                "must be an integer" if kind is int else "must be a number"
            ]
        elif not low <= value <= high:
            errors[f"{field}.{name}"] = [f"must be between {low:g} and {high:g}"]
        else:
            clean[name] = kind(value)
    if errors:
        raise ValidationError(errors)
    return clean


def prompt_set_generate_request(
    *,
    user,
    name: str,
    provider: Provider,
    topics: list[str],
    template: str = "",
    settings: dict[str, Any] | None = None,
    description: str = "",
) -> PromptSet:
    """A set to be generated on the ``generation`` queue from topics and a template
    (audited); its prompts arrive as ``pending``, for review."""
    name = _set_name_clean(name)
    template = template or DEFAULT_TEMPLATE
    if len(template) > 5000 or text_problem(template):
        raise ValidationError({"template": ["at most 5000 characters of text"]})
    _template_check(template)
    if not isinstance(topics, list) or not topics or len(topics) > 100:
        raise ValidationError({"topics": ["give 1 to 100 topics"]})
    clean_topics = []
    for i, topic in enumerate(topics):
        if (
            not isinstance(topic, str)
            or not topic.strip()
            or len(topic) > 200
            or text_problem(topic)
        ):
            raise ValidationError({f"topics[{i}]": ["must be text of 1 to 200 characters"]})
        clean_topics.append(topic.strip())
    clean = settings_validate(values=settings, spec=GENERATION_SETTINGS, field="settings")
    with transaction.atomic():
        prompt_set = PromptSet.objects.create(
            name=name,
            description=description,
            source=PromptSet.Source.GENERATED,
            status=PromptSet.Status.GENERATING,
            provider=provider,
            created_by=user,
            generation={"topics": clean_topics, "template": template, **clean},
        )
        audit_event_record(
            action="prompt_set.generate",
            obj=prompt_set,
            after={"name": name, "provider": provider.name, "topics": len(clean_topics), **clean},
        )
        outbox_task_enqueue(
            task="models_registry.prompt_set_generate", args=[prompt_set.pk], subject=prompt_set
        )
    return prompt_set


def _lines(text: str, limit: int) -> list[str]:
    """The prompts in a model's answer: one per line, list marks and quotes removed."""
    out = []
    for line in text.splitlines():
        line = _LIST_MARK.sub("", line).strip().strip('"“”').strip()
        if len(line) >= 8 and not _prompt_text_problem(line):
            out.append(line)
        if len(out) >= limit:
            break
    return out


def _ask(provider: Provider, asks: dict[Any, str], config: dict[str, Any]) -> dict[Any, str]:
    """Send each ``{key: user message}`` with the set's sampling settings; the answers by
    key (failed ones missing).  RuntimeError when every request failed."""
    requests = [
        ChatRequest(
            key=key,
            messages=[{"role": "user", "content": content}],
            temperature=config["temperature"],
            max_tokens=config["max_tokens"],
        )
        for key, content in asks.items()
    ]
    texts: dict[Any, str] = {}
    errors: list[str] = []
    for result in chat_stream(
        endpoint=provider_endpoint(provider=provider), requests=requests,
        concurrency=min(config["concurrency"], provider.max_concurrency), max_retries=4,
        backoff_base=settings.GENERATION_BACKOFF_BASE, stop=threading.Event(),
    ):  # fmt: skip
        if result is None:
            continue
        if result.ok:
            texts[result.key] = result.text
        else:
            errors.append(result.error)
    if requests and not texts:
        raise RuntimeError(f"every request failed; the last error: {errors[-1] if errors else '?'}")
    return texts


def prompt_set_generate(*, prompt_set_id: int) -> PromptSet | None:
    """Generate a set's prompts (the worker's side): seeds per topic, variations per seed,
    near-duplicates marked.  A set no longer ``generating`` is left alone (redelivery)."""
    with transaction.atomic():
        prompt_set = PromptSet.objects.select_for_update().filter(pk=prompt_set_id).first()
        if prompt_set is None or prompt_set.status != PromptSet.Status.GENERATING:
            return prompt_set
    config = prompt_set.generation
    provider = prompt_set.provider
    try:
        seeds_asked = {
            topic: config["template"].format(topic=topic, n=config["seeds_per_topic"])
            for topic in config["topics"]
        }
        seed_texts = _ask(provider, seeds_asked, config)
        seeds, seen = [], set()
        for topic in config["topics"]:
            for line in _lines(seed_texts.get(topic, ""), config["seeds_per_topic"]):
                if prompt_hash(line) not in seen:  # no variations asked twice for one seed
                    seen.add(prompt_hash(line))
                    seeds.append((topic, line))
        variations: list[tuple[str, int, str]] = []
        if config["variations_per_seed"]:
            asked = {
                i: VARIATION_TEMPLATE.format(n=config["variations_per_seed"], prompt=text)
                for i, (_, text) in enumerate(seeds)
            }
            answers = _ask(provider, asked, config) if asked else {}
            variations = [
                (seeds[i][0], i, line)
                for i, answer in answers.items()
                for line in _lines(answer, config["variations_per_seed"])
            ]
        counts = _generated_store(prompt_set, seeds, variations, config["dedupe_threshold"])
    except Exception as exc:
        logger.exception("prompt set %s: generation failed", prompt_set.pk)
        with transaction.atomic():
            PromptSet.objects.filter(pk=prompt_set.pk).update(
                status=PromptSet.Status.FAILED, message=f"{type(exc).__name__}: {exc}"[:2000]
            )
            audit_event_record(
                action="prompt_set.generate_failed",
                obj=prompt_set,
                after={"error": type(exc).__name__},
            )
        prompt_set.refresh_from_db()
        return prompt_set
    logger.info("prompt set %s generated: %s", prompt_set.pk, counts)
    prompt_set.refresh_from_db()
    return prompt_set


@transaction.atomic
def _generated_store(
    prompt_set: PromptSet,
    seeds: list[tuple[str, str]],
    variations: list[tuple[str, int, str]],
    threshold: float,
) -> dict[str, int]:
    """Store seeds then variations as ``pending`` prompts, near-duplicates as
    ``duplicate`` (with what they repeat), and finish the set (audited)."""
    prompt_set = PromptSet.objects.select_for_update().get(pk=prompt_set.pk)
    texts = [t for _, t in seeds] + [t for _, _, t in variations]
    earlier = list(prompt_set.prompts.order_by("position").values_list("pk", "text"))
    verdicts = near_duplicates(texts, threshold=threshold, earlier=[t for _, t in earlier])
    counts = {"seeds": 0, "variations": 0, "duplicates": 0, "repeated": 0}
    seed_rows: dict[int, Prompt] = {}
    start = (prompt_set.prompts.aggregate(p=Max("position"))["p"] or 0) + 1
    hashes = set(prompt_set.prompts.values_list("text_sha256", flat=True))
    by_index: dict[int, Prompt] = {}
    for index, text in enumerate(texts):
        is_seed = index < len(seeds)
        digest = prompt_hash(text)
        if digest in hashes:
            counts["repeated"] += 1
            continue
        hashes.add(digest)
        verdict = verdicts[index]
        prompt = Prompt(
            prompt_set=prompt_set,
            text=text,
            text_sha256=digest,
            position=start + index,
            topic=seeds[index][0] if is_seed else variations[index - len(seeds)][0],
            origin=Prompt.Origin.SEED if is_seed else Prompt.Origin.VARIATION,
            status=Prompt.Status.PENDING if verdict is None else Prompt.Status.DUPLICATE,
        )
        if not is_seed:
            prompt.parent = seed_rows.get(variations[index - len(seeds)][1])
        if verdict is not None:
            target, prompt.similarity = verdict
            if target < len(earlier):
                prompt.duplicate_of_id = earlier[target][0]
            else:
                prompt.duplicate_of = by_index.get(target - len(earlier))
            counts["duplicates"] += 1
        else:
            counts["seeds" if is_seed else "variations"] += 1
        prompt.save()
        by_index[index] = prompt
        if is_seed:
            seed_rows[index] = prompt
    prompt_set.status = PromptSet.Status.READY
    prompt_set.message = (
        f"{counts['seeds']} seeds and {counts['variations']} variations to review; "
        f"{counts['duplicates']} near-duplicates and {counts['repeated']} repeats removed."
    )
    prompt_set.save(update_fields=["status", "message"])
    audit_event_record(action="prompt_set.generated", obj=prompt_set, after=counts)
    return counts


@transaction.atomic
def prompt_set_review(
    *, prompt_set: PromptSet, keep: list[int] = (), discard: list[int] = (), user=None
) -> dict[str, int]:
    """Keep or discard prompts of a set (near-duplicates may be kept too); audited with
    the counts."""
    if prompt_set.status == PromptSet.Status.GENERATING:
        raise Conflict("status: the set is still being generated")
    keep, discard = set(keep or ()), set(discard or ())
    if keep & discard:
        raise ValidationError({"keep": ["a prompt cannot be both kept and discarded"]})
    known = set(prompt_set.prompts.filter(pk__in=keep | discard).values_list("pk", flat=True))
    unknown = sorted((keep | discard) - known)
    if unknown:
        raise ValidationError({"keep": [f"not prompts of this set: {unknown[:20]}"]})
    kept = prompt_set.prompts.filter(pk__in=keep).update(status=Prompt.Status.KEPT)
    discarded = prompt_set.prompts.filter(pk__in=discard).update(status=Prompt.Status.DISCARDED)
    audit_event_record(
        action="prompt_set.review", obj=prompt_set, after={"kept": kept, "discarded": discarded}
    )
    return {"kept": kept, "discarded": discarded}


def prompt_set_list(*, user) -> QuerySet[PromptSet]:
    """Prompt sets the user may read, with their prompt counts by status."""
    return access.queryset_restrict(queryset=PromptSet.objects.all(), user=user).annotate(
        n_prompts=Count("prompts"),
        n_kept=Count("prompts", filter=Q(prompts__status=Prompt.Status.KEPT)),
        n_pending=Count("prompts", filter=Q(prompts__status=Prompt.Status.PENDING)),
    )


def prompt_set_kept(*, prompt_set: PromptSet) -> QuerySet[Prompt]:
    """The prompts generation uses: the kept ones, in order."""
    return prompt_set.prompts.filter(status=Prompt.Status.KEPT).order_by("position", "id")
