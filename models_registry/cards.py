"""Model cards: composed from sections that apps provide, rendered as HTML, Markdown and PDF.

A card belongs to one model version.  Its human-entered text (intended use, limitations,
ethical considerations…) is the version's ``ModelCard`` row; everything else is computed
when the card is rendered, by *section providers*:

- the registry's own sections (this module): model details, intended use, training data
  and its annotators' agreement, metrics against the parent version, calibration with a
  reliability diagram, limitations and ethical considerations, alias history;
- monitoring's (``monitoring/cards.py``, registered in ``MonitoringConfig.ready()``, since
  monitoring reads the registry and never the reverse): calibration in production and
  open alerts;
- approvals and their rationale, read through governance's selectors, are one more
  provider registered the same way (``card_section_register``) when that workflow exists.

A provider is ``provider(*, version, card) -> CardSection | None`` (None: nothing to say).
Sections are plain data (text, facts, tables, a figure), so the three renderings cannot
disagree, and the content hash (SHA-256 of the Markdown body) names exactly what a reader
saw.  PDFs are rendered locally by WeasyPrint with a URL fetcher that refuses anything but
the app's own static files: rendering a card never touches the network.
"""

from __future__ import annotations

import hashlib
import html
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import markdown
import nh3
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from annotation import selectors as annotation_selectors

from . import selectors
from .models import ModelCard, ModelVersion

# -- sections and their registry ----------------------------------------------------------


@dataclass
class CardTable:
    """A small table: header cells and rows of already formatted cells."""

    headers: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class CardSection:
    """One section of a card, as data that the HTML, Markdown and PDF renderings share.

    ``texts`` are human-entered Markdown (subheading, text); ``paragraphs`` and ``facts``
    are computed plain text; ``figure_svg`` is markup made by this module (never by a user).
    """

    key: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    tables: list[CardTable] = field(default_factory=list)
    texts: list[tuple[str, str]] = field(default_factory=list)
    figure_svg: str = ""
    figure_caption: str = ""
    order: int = 0


SectionProvider = Callable[..., CardSection | None]


@dataclass(frozen=True)
class _Registered:
    key: str
    title: str
    order: int
    provider: SectionProvider


_PROVIDERS: dict[str, _Registered] = {}


def card_section_register(*, key: str, title: str, order: int, provider: SectionProvider) -> None:
    """Add (or replace, by ``key``) a section provider; sections render by ``order``.

    Called from an app's ``AppConfig.ready()``.  Orders used so far: 10 details, 20 intended
    use, 30 training data, 40 metrics, 50 calibration, 60 production calibration
    (monitoring), 65 error zones, 70 open alerts (monitoring), 80 limitations,
    90 approvals, 95 alias history.

    Approvals and their rationale join the same way once governance has them: governance
    imports no other app, so the registry registers the section and reads governance's
    selectors in its provider, e.g. in ``registry_sections_register``::

        card_section_register(key="approvals", title="Approvals", order=90,
                              provider=_approvals)  # reads governance.selectors
    """
    _PROVIDERS[key] = _Registered(key=key, title=title, order=order, provider=provider)


def card_section_keys() -> list[str]:
    """The registered sections' keys, in order."""
    return [r.key for r in sorted(_PROVIDERS.values(), key=lambda r: (r.order, r.key))]


# -- formatting ---------------------------------------------------------------------------


def number_format(value: Any) -> str:
    """A figure as the card shows it: counts with separators, measurements to four
    significant digits, flags as yes/no, nothing as a dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _change(value: Any, parent: Any) -> str:
    if (
        isinstance(value, int | float)
        and isinstance(parent, int | float)
        and not isinstance(value, bool)
        and not isinstance(parent, bool)
    ):
        return f"{value - parent:+.4g}"
    return "—"


# -- the registry's own sections ----------------------------------------------------------


def _details(*, version: ModelVersion, card: ModelCard | None) -> CardSection:
    aliases = sorted(a.name for a in version.aliases.all())
    parent = selectors.version_parent(version=version)
    return CardSection(
        key="details",
        title="Model details",
        facts=[
            ("Version", version.ref),
            ("Kind", version.get_kind_display()),
            ("Base model", version.base_model.name),
            ("Parent version", parent.ref if parent else "— (first version)"),
            ("Registered", version.created_at.strftime("%Y-%m-%d %H:%M UTC")),
            ("Training job", f"#{version.training_job_id}" if version.training_job_id else "—"),
            ("Artifact SHA-256", version.artifact_sha256),
            ("Code version", version.code_version or "—"),
            ("Aliases now", ", ".join(aliases) or "—"),
        ],
    )


def _human(card: ModelCard | None, *names: str) -> list[tuple[str, str]]:
    labels = dict(ModelCard.HUMAN_FIELDS)
    return [(labels[name], getattr(card, name, "") if card else "") for name in names]


def _intended_use(*, version: ModelVersion, card: ModelCard | None) -> CardSection:
    return CardSection(
        key="intended_use",
        title="Uses",
        texts=_human(card, "intended_use", "out_of_scope_use"),
    )


def _training_data(*, version: ModelVersion, card: ModelCard | None) -> CardSection:
    lineage = selectors.version_lineage(version=version)
    snapshot = lineage["snapshot"]
    agreement = snapshot.get("agreement")
    facts = [
        ("Dataset snapshot", f"#{snapshot['snapshot']} ({snapshot['format']})"),
        ("Annotation project", f"{snapshot['project_name']} (#{snapshot['project']})"),
        ("Rows", number_format(snapshot["rows"])),
        ("Snapshot SHA-256", snapshot["sha256"]),
        (
            "Snapshot unchanged since training",
            "yes" if lineage["snapshot_unchanged"] else "NO — the snapshot's hash differs",
        ),
        ("Training pairs", number_format(version.metrics.get("train_pairs"))),
        ("Held-out pairs", number_format(version.metrics.get("heldout_pairs"))),
    ]
    paragraphs = []
    if agreement:
        metrics = agreement.get("metrics") or {}
        facts += [
            ("Items (complete)", f"{agreement['n_items']:,} ({agreement['n_complete']:,})"),
            ("Annotations", number_format(agreement["n_annotations"])),
        ]
        facts += [
            (label, number_format(metrics.get(key)))
            for key, label in annotation_selectors.AGREEMENT_METRICS
        ]
        paragraphs.append(
            "Annotator agreement as computed for the project on "
            f"{agreement['computed_at']:%Y-%m-%d %H:%M UTC}, the latest computation before "
            "the snapshot was taken."
        )
    else:
        paragraphs.append("Annotator agreement was not computed before the snapshot was taken.")
    return CardSection(
        key="training_data",
        title="Training data",
        paragraphs=paragraphs,
        facts=facts,
        texts=_human(card, "training_data_notes"),
    )


def _metrics(*, version: ModelVersion, card: ModelCard | None) -> CardSection:
    parent = selectors.version_parent(version=version)
    headers = ["Metric", version.ref]
    if parent:
        headers += [parent.ref, "Change"]
    rows = []
    for key, label in selectors.COMPARED_METRICS:
        value = version.metrics.get(key)
        if value is None and (parent is None or parent.metrics.get(key) is None):
            continue
        row = [label, number_format(value)]
        if parent:
            row += [number_format(parent.metrics.get(key)), _change(value, parent.metrics.get(key))]
        rows.append(row)
    for key, label in (("ece", "ECE (calibrated)"), ("brier", "Brier (calibrated)")):
        value = (version.calibration.get("after") or {}).get(key)
        if value is None:
            continue
        row = [label, number_format(value)]
        if parent:
            other = (parent.calibration.get("after") or {}).get(key)
            row += [number_format(other), _change(value, other)]
        rows.append(row)
    return CardSection(
        key="metrics",
        title="Metrics",
        paragraphs=[
            "Measured on the held-out pairs of the training snapshot"
            + (f", beside the parent version {parent.ref}." if parent else ".")
        ],
        tables=[CardTable(headers=headers, rows=rows)],
    )


CALIBRATION_COLUMNS = (
    ("ece", "ECE"),
    ("ece_equal_mass", "ECE (equal mass)"),
    ("mce", "MCE"),
    ("brier", "Brier"),
    ("nll", "NLL"),
    ("accuracy", "Accuracy"),
)


def _calibration(*, version: ModelVersion, card: ModelCard | None) -> CardSection:
    calibration = version.calibration or {}
    if calibration.get("method") != "temperature":
        return CardSection(
            key="calibration",
            title="Calibration",
            paragraphs=[
                f"No calibration ({calibration.get('note') or version.get_kind_display()})."
            ],
        )
    temperature = calibration.get("temperature")
    stages = [
        ("Raw margins", calibration.get("before")),
        (f"Temperature T = {number_format(temperature)}", calibration.get("after")),
        ("Platt scaling", calibration.get("platt_after")),
    ]
    rows = [
        [label, *(number_format(m.get(key)) for key, _ in CALIBRATION_COLUMNS)]
        for label, m in stages
        if m
    ]
    return CardSection(
        key="calibration",
        title="Calibration",
        paragraphs=[
            "Predictions use temperature scaling: P(a ≻ b) = σ((r_a − r_b) / T) with "
            f"T = {number_format(temperature)}, fitted on "
            f"{number_format(calibration.get('n_pairs'))} held-out pairs (each scored both ways)."
        ],
        tables=[CardTable(headers=["", *(label for _, label in CALIBRATION_COLUMNS)], rows=rows)],
        figure_svg=reliability_svg(
            series=[
                ("before", "Raw margins", (calibration.get("before") or {}).get("reliability")),
                ("after", "Calibrated", (calibration.get("after") or {}).get("reliability")),
            ]
        ),
        figure_caption=(
            "Reliability diagram: predicted P(a ≻ b) against the observed frequency, before and "
            "after temperature scaling; the diagonal is perfect calibration"
        ),
    )


def _limitations(*, version: ModelVersion, card: ModelCard | None) -> CardSection:
    return CardSection(
        key="limitations",
        title="Limitations and ethical considerations",
        texts=_human(card, "limitations", "ethical_considerations"),
    )


def _alias_history(*, version: ModelVersion, card: ModelCard | None) -> CardSection | None:
    rows = [
        [
            change.changed_at.strftime("%Y-%m-%d %H:%M"),
            change.alias,
            "to this version" if change.to_version_id == version.pk else "away",
            change.changed_by.get_username() if change.changed_by else "—",
            change.reason or "—",
        ]
        for change in selectors.alias_history(registered_model=version.registered_model)
        if version.pk in (change.from_version_id, change.to_version_id)
    ]
    return CardSection(
        key="alias_history",
        title="Alias history",
        paragraphs=[] if rows else ["No alias has named this version."],
        tables=[CardTable(headers=["When (UTC)", "Alias", "Moved", "By", "Reason"], rows=rows)]
        if rows
        else [],
    )


def registry_sections_register() -> None:
    """The registry's own sections (called from ``ModelsRegistryConfig.ready()``)."""
    for key, title, order, provider in (
        ("details", "Model details", 10, _details),
        ("intended_use", "Uses", 20, _intended_use),
        ("training_data", "Training data", 30, _training_data),
        ("metrics", "Metrics", 40, _metrics),
        ("calibration", "Calibration", 50, _calibration),
        ("limitations", "Limitations and ethical considerations", 80, _limitations),
        ("alias_history", "Alias history", 95, _alias_history),
    ):
        card_section_register(key=key, title=title, order=order, provider=provider)


# -- the reliability diagram (SVG, drawn here: no script, so it works in the PDF too) -----

_SVG_SIZE, _SVG_PAD = 320, 40


def _svg_xy(p: float, q: float) -> tuple[float, float]:
    inner = _SVG_SIZE - 2 * _SVG_PAD
    return (round(_SVG_PAD + p * inner, 2), round(_SVG_SIZE - _SVG_PAD - q * inner, 2))


def reliability_svg(*, series: list[tuple[str, str, dict | None]]) -> str:
    """An SVG reliability diagram of ``(css class, label, reliability bins)`` series.

    Only numbers and fixed labels reach the markup, so it is safe to embed as it is."""
    drawn = [(cls, label, bins) for cls, label, bins in series if bins and bins.get("prob_pred")]
    if not drawn:
        return ""
    (x0, y0), (x1, y1) = _svg_xy(0, 0), _svg_xy(1, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_SVG_SIZE} {_SVG_SIZE}" '
        'class="reliability" role="img" aria-label="Reliability diagram">',
        f'<rect class="frame" x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" '
        'fill="none" stroke="#888"/>',
        f'<line class="diagonal" x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="#888" '
        'stroke-dasharray="3 3"/>',
    ]
    for tick in (0, 0.5, 1):
        x, _ = _svg_xy(tick, 0)
        _, y = _svg_xy(0, tick)
        parts.append(
            f'<text x="{x}" y="{y0 + 14}" text-anchor="middle" font-size="10">{tick}</text>'
            f'<text x="{x0 - 6}" y="{y + 3}" text-anchor="end" font-size="10">{tick}</text>'
        )
    parts.append(
        f'<text x="{(x0 + x1) / 2}" y="{_SVG_SIZE - 6}" text-anchor="middle" font-size="11">'
        "Predicted P(a ≻ b)</text>"
    )
    parts.append(
        f'<text x="12" y="{(y0 + y1) / 2}" text-anchor="middle" font-size="11" '
        f'transform="rotate(-90 12 {(y0 + y1) / 2})">Observed frequency</text>'
    )
    colours = {"before": "#c77800", "after": "#2563eb"}
    for index, (cls, label, bins) in enumerate(drawn):
        points = [
            _svg_xy(float(p), float(q))
            for p, q in zip(bins["prob_pred"], bins["prob_true"], strict=False)
        ]
        colour = colours.get(cls, "#555")
        path = " ".join(f"{x},{y}" for x, y in points)
        parts.append(
            f'<polyline class="series-{html.escape(cls)}" points="{path}" fill="none" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        parts += [
            f'<circle class="series-{html.escape(cls)}" cx="{x}" cy="{y}" r="3" fill="{colour}"/>'
            for x, y in points
        ]
        legend_y = y1 + 12 + 14 * index
        parts.append(
            f'<line x1="{x0 + 8}" y1="{legend_y - 4}" x2="{x0 + 24}" y2="{legend_y - 4}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<text x="{x0 + 28}" y="{legend_y}" font-size="10">{html.escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# -- composing and rendering --------------------------------------------------------------


@dataclass
class CardDocument:
    """A composed card: what every rendering shows, and the hash of its content."""

    version: ModelVersion
    card: ModelCard | None
    sections: list[CardSection]
    generated_at: Any
    content_sha256: str = ""

    @property
    def revision(self) -> int:
        """The card revision (0: the version has no card yet)."""
        return self.card.revision if self.card else 0

    @property
    def title(self) -> str:
        return f"Model card: {self.version.ref}"


def card_compose(*, version: ModelVersion) -> CardDocument:
    """Every registered section for ``version``, in order, and the content hash."""
    card = selectors.model_card_current(version=version)
    sections = []
    for registered in sorted(_PROVIDERS.values(), key=lambda r: (r.order, r.key)):
        section = registered.provider(version=version, card=card)
        if section is not None:
            section.order = registered.order
            sections.append(section)
    document = CardDocument(
        version=version, card=card, sections=sections, generated_at=timezone.now()
    )
    document.content_sha256 = hashlib.sha256(_markdown_body(document).encode("utf-8")).hexdigest()
    return document


_NO_TEXT = "Not written yet."


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_body(document: CardDocument) -> str:
    """The card in Markdown, without the footer (what the content hash covers)."""
    lines = [
        f"# {document.title}",
        "",
        f"Model version `{document.version.ref}` · card revision {document.revision}",
        "",
    ]
    for section in document.sections:
        lines += [f"## {section.title}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
        for label, value in section.facts:
            lines.append(f"- **{label}:** {value}")
        if section.facts:
            lines.append("")
        for table in section.tables:
            lines.append("| " + " | ".join(_md_cell(h) or " " for h in table.headers) + " |")
            lines.append("|" + "---|" * len(table.headers))
            for row in table.rows:
                lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
            lines.append("")
        for heading, text in section.texts:
            lines += [f"### {heading}", "", text.strip() or f"_{_NO_TEXT}_", ""]
        if section.figure_svg:
            lines += [f"_{section.figure_caption} (in the HTML and PDF versions)._", ""]
    return "\n".join(lines).rstrip() + "\n"


def card_footer(document: CardDocument) -> str:
    """The line every download ends with: version, revision, content hash, time."""
    return (
        f"{document.version.ref} · card revision {document.revision} · content SHA-256 "
        f"{document.content_sha256} · generated {document.generated_at:%Y-%m-%d %H:%M UTC}"
    )


def card_markdown(document: CardDocument) -> str:
    """The card as a Markdown file."""
    return _markdown_body(document) + "\n---\n\n" + card_footer(document) + "\n"


#: Tags allowed in human-entered Markdown once it is HTML: no images, so that neither a
#: browser nor the PDF renderer loads anything a card's author points at.
_HUMAN_TAGS = nh3.ALLOWED_TAGS - {"img", "area", "map"}


def human_text_html(text: str) -> SafeString:
    """Human-entered Markdown as sanitised HTML (links kept, images dropped)."""
    if not text.strip():
        return mark_safe(f'<p class="muted">{_NO_TEXT}</p>')  # noqa: S308 — a constant
    rendered = markdown.markdown(text, extensions=["extra", "sane_lists"])
    return mark_safe(nh3.clean(rendered, tags=_HUMAN_TAGS))  # noqa: S308 — sanitised by nh3


def card_context(document: CardDocument) -> dict[str, Any]:
    """What the HTML and PDF templates need (human text already sanitised)."""
    sections = [
        {
            "section": section,
            "texts": [(heading, human_text_html(text)) for heading, text in section.texts],
            "figure": mark_safe(section.figure_svg),  # noqa: S308 — numbers and fixed labels only
        }
        for section in document.sections
    ]
    return {"document": document, "sections": sections, "footer": card_footer(document)}


# -- PDF ----------------------------------------------------------------------------------


def card_pdf(document: CardDocument) -> bytes:
    """The card as a PDF, rendered on this machine (``models_registry.card_pdf``; WeasyPrint
    is imported only when a PDF is asked for)."""
    from .card_pdf import card_pdf_document

    html_text = render_to_string("models_registry/card_print.html", card_context(document))
    return card_pdf_document(html_text=html_text).write_pdf()
