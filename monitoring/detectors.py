"""Streaming drift detectors (river) on a version's outcome streams.

- the *error* stream (1 when the model's preferred response is not the humans'): ADWIN,
  DDM (made for a binary error stream) and Page–Hinkley;
- the *confidence* stream (max(p, 1 − p)): ADWIN, Page–Hinkley and KSWIN.

A detector is pickled after each batch (``DetectorState.state``): river detectors are plain
Python objects, so a restored one continues exactly where the saved one stopped.  The
pickles are written and read only by this module, from the application's own database.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable

from river import drift
from river.drift import binary

STREAMS: dict[str, tuple[str, ...]] = {
    "error": ("adwin", "ddm", "page_hinkley"),
    "confidence": ("adwin", "page_hinkley", "kswin"),
}

# river's defaults, except: KSWIN's seed (reproducible: its window sampling is random) and
# alpha — it runs a K-S test at every step, so at 0.005 it raised 81 false alarms in 20
# seeded stationary 3000-sample confidence streams (3 at 0.0001, still finding every change);
# DDM's warm-up and threshold — with its defaults (30, 3.0) it raised 23 false alarms in
# 20 seeded stationary streams of 1000 outcomes at a 10 % error rate (0.1 % of them with
# 300 and 3.5), because its minimum p + s is taken from the first few noisy estimates.
FACTORIES: dict[str, Callable[[], object]] = {
    "adwin": drift.ADWIN,
    "ddm": lambda: binary.DDM(warm_start=300, drift_threshold=3.5),
    "page_hinkley": drift.PageHinkley,
    "kswin": lambda: drift.KSWIN(alpha=0.0001, seed=42),
}


def detector_new(kind: str):
    """A fresh river detector of ``kind``."""
    return FACTORIES[kind]()


def detector_feed(detector, values) -> list[int]:
    """Update ``detector`` with each value; the indexes (in ``values``) where it fired."""
    fired = []
    for index, value in enumerate(values):
        detector.update(value)
        if detector.drift_detected:
            fired.append(index)
    return fired


def detector_dump(detector) -> bytes:
    return pickle.dumps(detector, protocol=pickle.HIGHEST_PROTOCOL)


def detector_load(state: bytes):
    return pickle.loads(bytes(state))  # noqa: S301 — our own rows, written by detector_dump
