"""Drift detection on river's SEA and Agrawal synthetic streams with known change points.

Prints one JSON document on stdout (progress on stderr).  No database: the detectors are
the platform's (``monitoring.detectors.FACTORIES``, the error stream's ADWIN, DDM and
Page–Hinkley as configured) and, in the same run, river's with default parameters.

The loop mimics the platform's: a model (river's Hoeffding tree) is trained on the first
``--train`` samples of a concept and then stays fixed, as a deployed reward model does;
each prediction meeting its label feeds 1/0 (wrong/right) to the detector.  When the
detector fires, the model is retrained on the next ``--train`` samples (a new version,
so a fresh detector, as the platform keeps detectors per version); until then the old
model keeps serving and nothing is judged.

A stream is ``--concepts`` segments of ``--segment`` samples; each segment uses another
concept (SEA variants 0→1→2→3, thresholds 8, 9, 7, 9.5; Agrawal functions 0→2→4→6), so
the change points are known.  A change counts as detected when a detection falls in
``[change, change + --tolerance)``; the delay is from the change to that first detection.
Every other detection is a false alarm, counted per 10,000 judged samples.  The same
detectors also run on a stationary stream (one concept, same length): every detection
there is a false alarm.

    .venv/bin/python bench/drift.py > bench/results-drift.json
    .venv/bin/python bench/drift.py --seeds 3 --segment 3000   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from river import drift, tree
from river.datasets import synth
from river.drift import binary

from monitoring.detectors import FACTORIES, STREAMS

DEFAULTS: dict[str, Callable[[], object]] = {
    "adwin": drift.ADWIN,
    "ddm": binary.DDM,
    "page_hinkley": drift.PageHinkley,
}
CONCEPTS = {"sea": (0, 1, 2, 3), "agrawal": (0, 2, 4, 6)}


def concept_stream(name: str, concept: int, seed: int) -> Iterator[tuple[dict, int]]:
    """An endless stream of one concept of a river generator."""
    if name == "sea":
        return iter(synth.SEA(variant=concept, seed=seed))
    return iter(synth.Agrawal(classification_function=concept, seed=seed))


def drifting_stream(name: str, concepts, segment: int, seed: int) -> list[tuple[dict, int]]:
    """``segment`` samples of each concept in turn (the change points are the joins)."""
    rows = []
    for k, concept in enumerate(concepts):
        stream = concept_stream(name, concept, seed * 100 + k)
        rows.extend(next(stream) for _ in range(segment))
    return rows


def model_train(rows) -> tree.HoeffdingTreeClassifier:
    model = tree.HoeffdingTreeClassifier(grace_period=50)
    for x, y in rows:
        model.learn_one(x, y)
    return model


def run(rows, factory, *, train: int) -> list[int]:
    """The platform's loop on one stream; the positions where the detector fired."""
    detections = []
    model = model_train(rows[:train])
    detector = factory()
    t = train
    while t < len(rows):
        x, y = rows[t]
        detector.update(int(model.predict_one(x) != y))
        if detector.drift_detected:
            detections.append(t)
            # Retrain on the next samples (the old model serves meanwhile), fresh detector.
            model = model_train(rows[t + 1 : t + 1 + train])
            detector = factory()
            t += train
        t += 1
    return detections


def score(detections, changes, *, tolerance: int, judged: int) -> dict:
    """Detected changes, delays and false alarms of one run."""
    used, delays = set(), []
    for change in changes:
        hit = next((d for d in detections if change <= d < change + tolerance), None)
        if hit is not None:
            used.add(hit)
            delays.append(hit - change)
    false = len([d for d in detections if d not in used])
    return {"detected": len(delays), "changes": len(changes), "delays": delays,
            "false_alarms": false, "judged": judged}  # fmt: skip


def summary(runs: list[dict]) -> dict:
    changes = sum(r["changes"] for r in runs)
    detected = sum(r["detected"] for r in runs)
    judged = sum(r["judged"] for r in runs)
    delays = [d for r in runs for d in r["delays"]]
    out = {
        "false_alarms": sum(r["false_alarms"] for r in runs),
        "false_alarms_per_10k": round(10_000 * sum(r["false_alarms"] for r in runs) / judged, 3),
        "samples": judged,
    }
    if changes:
        out.update(
            detection_rate=round(detected / changes, 3),
            changes=changes,
            detected=detected,
            median_delay=statistics.median(delays) if delays else None,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--segment", type=int, default=5000)
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--tolerance", type=int, default=2000)
    args = parser.parse_args()
    started = time.perf_counter()
    kinds = STREAMS["error"]
    configs = {"platform": FACTORIES, "river_default": DEFAULTS}
    results: dict = {}
    for name, concepts in CONCEPTS.items():
        changes = [args.segment * k for k in range(1, len(concepts))]
        per = {c: {k: {"drifting": [], "stationary": []} for k in kinds} for c in configs}
        for seed in range(args.seeds):
            drifting = drifting_stream(name, concepts, args.segment, seed)
            stationary = drifting_stream(name, concepts[:1] * len(concepts), args.segment, seed)
            for config, factories in configs.items():
                for kind in kinds:
                    for label, rows, cps in (("drifting", drifting, changes),
                                             ("stationary", stationary, [])):  # fmt: skip
                        found = run(rows, factories[kind], train=args.train)
                        per[config][kind][label].append(
                            score(
                                found, cps, tolerance=args.tolerance, judged=len(rows) - args.train
                            )
                        )
            print(
                f"{name} seed {seed} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr
            )
        results[name] = {
            config: {
                kind: {
                    "drifting": summary(per[config][kind]["drifting"]),
                    "stationary": summary(per[config][kind]["stationary"]),
                }
                for kind in kinds
            }
            for config in configs
        }
    goals = {"detection_rate": ">= 0.85", "false_alarms_per_10k": "<= 1 (stationary stream)"}
    met = {
        f"{name}/{config}/{kind}": {
            "detection_rate": r["drifting"]["detection_rate"] >= 0.85,
            "false_alarms_per_10k": r["stationary"]["false_alarms_per_10k"] <= 1,
        }
        for name, by_config in results.items()
        for config, by_kind in by_config.items()
        for kind, r in by_kind.items()
    }
    print(json.dumps({
        "benchmark": "drift",
        "settings": vars(args) | {"concepts": CONCEPTS, "model": "river HoeffdingTreeClassifier(grace_period=50)"},
        "results": results,
        "goals": goals,
        "goals_met": met,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
