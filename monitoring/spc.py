"""Statistical process control: Shewhart control charts with the Western Electric rules.

Pure functions over pre-aggregated points (numbers in, numbers out; no database):

- :func:`individuals_chart` — one value per point (accuracy or Krippendorff's α of a
  window); centre line and σ are the mean and sample standard deviation (ddof = 1) of the
  first ``baseline`` points, limits centre ± 3σ;
- :func:`proportion_chart` — a p-chart for shares with a known count per point (an
  annotator's agreement with consensus): centre p̄ = Σ successes / Σ trials over the
  baseline, σᵢ = √(p̄(1 − p̄)/nᵢ), so a window with few votes gets wider limits;
- :func:`mean_chart` — an x̄-chart for per-point means with known counts and standard
  deviations (an annotator's mean log time per vote): centre = the baseline's weighted
  mean, σᵢ = s_pooled/√nᵢ.

Every chart judges each point's standardised distance z = (x − centre)/σ with the
Western Electric rules (:func:`western_electric`); rule 1 alone is the plain 3σ chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: The Western Electric rules, by number.
RULES: dict[int, str] = {
    1: "a point beyond 3σ",
    2: "2 of 3 successive points beyond 2σ on one side",
    3: "4 of 5 successive points beyond 1σ on one side",
    4: "8 successive points on one side of the centre line",
}
ALL_RULES = (1, 2, 3, 4)

# (points in the run, how many of them must be beyond, the z they must be beyond)
_RUNS = {2: (3, 2, 2.0), 3: (5, 4, 1.0), 4: (8, 8, 0.0)}


def rules_parse(text: str | Sequence[int] | None) -> tuple[int, ...]:
    """``"1,2,4"``, ``"we"`` (all four) or a sequence of rule numbers → a sorted tuple.

    Raises ValueError naming the bad part."""
    if text is None or text == "":
        return (1,)
    if isinstance(text, str):
        if text.strip().lower() in ("we", "western_electric", "all"):
            return ALL_RULES
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            numbers = [int(p) for p in parts]
        except ValueError as exc:
            raise ValueError("rules: give rule numbers 1-4 separated by commas, or 'we'") from exc
    else:
        numbers = list(text)
    if not numbers or any(n not in RULES for n in numbers):
        raise ValueError("rules: give rule numbers 1-4 separated by commas, or 'we'")
    return tuple(sorted(set(numbers)))


def western_electric(
    z: Sequence[float | None], *, rules: Sequence[int] = ALL_RULES
) -> list[list[int]]:
    """For each point, the rules that signal at it.

    A run-based rule signals at the point that completes its pattern, and only if that
    point itself is beyond the rule's line on the run's side (so a signal names a point
    that is part of the anomaly).  A missing point (None or NaN) is never beyond a line,
    so it breaks runs.
    """
    values = np.array([np.nan if v is None else float(v) for v in z], dtype=float)
    signals: list[list[int]] = [[] for _ in values]
    for i, value in enumerate(values):
        if np.isnan(value):
            continue
        if 1 in rules and abs(value) > 3.0:
            signals[i].append(1)
        for rule in (2, 3, 4):
            if rule not in rules:
                continue
            length, needed, line = _RUNS[rule]
            # At the start of a series the window is shorter, so enough points beyond
            # the line still make the pattern (2 of the first 2 beyond 2σ is a signal).
            window = values[max(0, i + 1 - length) : i + 1]
            for side in (1.0, -1.0):
                beyond = np.nan_to_num(side * window, nan=-np.inf) > line
                if beyond[-1] and beyond.sum() >= needed:
                    signals[i].append(rule)
                    break
    return signals


@dataclass
class ControlChart:
    """A judged chart: centre line, σ and limits per point, z and the signals per point.

    ``center`` is None when the baseline is too short to estimate it (fewer than two
    usable points); then no point is judged.
    """

    values: list[float | None]
    baseline: int
    rules: tuple[int, ...]
    center: float | None
    sigma: list[float | None]
    z: list[float | None] = field(default_factory=list)
    signals: list[list[int]] = field(default_factory=list)

    @property
    def ucl(self) -> list[float | None]:
        """Upper control limits, centre + 3σ per point."""
        return [None if s is None else self.center + 3 * s for s in self.sigma]

    @property
    def lcl(self) -> list[float | None]:
        """Lower control limits, centre − 3σ per point."""
        return [None if s is None else self.center - 3 * s for s in self.sigma]

    @property
    def out_of_control(self) -> bool:
        """Whether the latest point signals."""
        return bool(self.signals and self.signals[-1])


def _finite(value) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _judge(
    values, center: float | None, sigma: list[float | None], baseline: int, rules
) -> ControlChart:
    chart = ControlChart(
        values=[_finite(v) for v in values],
        baseline=baseline,
        rules=tuple(rules),
        center=_finite(center),
        sigma=[_finite(s) for s in sigma],
    )
    z: list[float | None] = []
    for value, s in zip(chart.values, chart.sigma, strict=True):
        if value is None or s is None or chart.center is None:
            z.append(None)
        elif s == 0:
            # A constant baseline: any departure from it is out of control.
            z.append(
                0.0 if value == chart.center else math.copysign(math.inf, value - chart.center)
            )
        else:
            z.append((value - chart.center) / s)
    chart.z = z
    chart.signals = western_electric(z, rules=rules)
    chart.z = [_finite(v) for v in z]
    return chart


def _unjudged(values, baseline: int, rules) -> ControlChart:
    return _judge(values, None, [None] * len(values), baseline, rules)


def individuals_chart(
    values: Sequence[float | None], *, baseline: int, rules: Sequence[int] = (1,)
) -> ControlChart:
    """Centre and σ from the mean and sample standard deviation of the first
    ``baseline`` points (missing ones skipped); every point judged, the baseline too."""
    base = np.array([v for v in values[:baseline] if v is not None and math.isfinite(v)])
    if len(base) < 2:
        return _unjudged(values, baseline, rules)
    sigma = float(base.std(ddof=1))
    return _judge(values, float(base.mean()), [sigma] * len(values), baseline, rules)


def proportion_chart(
    successes: Sequence[int], trials: Sequence[int], *, baseline: int, rules: Sequence[int] = (1,)
) -> ControlChart:
    """A p-chart: each point's share successes/trials against p̄ of the baseline points."""
    x, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    values = [float(a / b) if b > 0 else None for a, b in zip(x, n, strict=True)]
    if len(values) < 2 or n[:baseline].sum() <= 0 or baseline < 2:
        return _unjudged(values, baseline, rules)
    p = float(x[:baseline].sum() / n[:baseline].sum())
    sigma = [math.sqrt(p * (1 - p) / b) if b > 0 else None for b in n]
    return _judge(values, p, sigma, baseline, rules)


def mean_chart(
    means: Sequence[float], sds: Sequence[float], counts: Sequence[int], *, baseline: int,
    rules: Sequence[int] = (1,),
) -> ControlChart:  # fmt: skip
    """An x̄-chart: each point's mean against the baseline's weighted mean, with
    σᵢ = s_pooled/√nᵢ (s_pooled from the baseline points' own standard deviations)."""
    m, s, n = (np.asarray(a, dtype=float) for a in (means, sds, counts))
    values = [float(v) for v in m]
    dof = (n[:baseline] - 1).clip(min=0)
    if baseline < 2 or dof.sum() <= 0:
        return _unjudged(values, baseline, rules)
    center = float((m[:baseline] * n[:baseline]).sum() / n[:baseline].sum())
    pooled = math.sqrt(float((dof * s[:baseline] ** 2).sum() / dof.sum()))
    sigma = [pooled / math.sqrt(c) if c > 0 else None for c in n]
    return _judge(values, center, sigma, baseline, rules)
