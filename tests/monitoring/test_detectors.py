"""River detectors: fire on an injected abrupt change, stay quiet on a stationary stream
(seeded), and continue from their persisted state after a reload."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring import detectors, services
from monitoring.models import DetectorState

from .conftest import T0, outcomes_make

CHANGE = 1000


def _error_stream(seed: int, *, change: bool) -> list[int]:
    rng = np.random.default_rng(seed)
    before = rng.random(CHANGE) < 0.1
    after = rng.random(CHANGE) < (0.6 if change else 0.1)
    return [int(x) for x in np.concatenate([before, after])]


def _confidence_stream(seed: int, *, change: bool) -> list[float]:
    rng = np.random.default_rng(seed)
    before = rng.normal(0.85, 0.03, CHANGE)
    after = rng.normal(0.65 if change else 0.85, 0.03, CHANGE)
    return [float(x) for x in np.concatenate([before, after])]


CASES = [(stream, kind) for stream, kinds in detectors.STREAMS.items() for kind in kinds]


def _stream(stream: str, seed: int, *, change: bool):
    return (_error_stream if stream == "error" else _confidence_stream)(seed, change=change)


@pytest.mark.parametrize(("stream", "kind"), CASES)
def test_fires_after_an_abrupt_change(stream, kind):
    fired = detectors.detector_feed(detectors.detector_new(kind), _stream(stream, 1, change=True))
    assert any(CHANGE <= i < CHANGE + 500 for i in fired), fired
    assert not [i for i in fired if i < CHANGE]


@pytest.mark.parametrize(("stream", "kind"), CASES)
def test_stays_quiet_on_a_stationary_stream(stream, kind):
    fired = detectors.detector_feed(detectors.detector_new(kind), _stream(stream, 2, change=False))
    assert fired == []


@pytest.mark.parametrize(("stream", "kind"), CASES)
def test_a_reloaded_detector_continues_where_it_stopped(stream, kind):
    values = _stream(stream, 3, change=True)
    whole = detectors.detector_feed(detectors.detector_new(kind), values)
    first = detectors.detector_new(kind)
    head = detectors.detector_feed(first, values[:CHANGE])
    restored = detectors.detector_load(detectors.detector_dump(first))
    tail = detectors.detector_feed(restored, values[CHANGE:])
    assert whole == head + [CHANGE + i for i in tail]
    assert tail  # the change is found by the restored detector


@pytest.mark.django_db
def test_state_is_persisted_per_version_and_stream(version):
    """Two batches through the database find the change a single pass finds."""
    rng = np.random.default_rng(4)
    labels_before = (rng.random(CHANGE) < 0.9).astype(int)  # model says A (p=0.8): 10 % error
    labels_after = (rng.random(CHANGE) < 0.4).astype(int)  # 60 % error
    first = outcomes_make(version=version, probs=[0.8] * CHANGE, labels=labels_before, at=T0)
    services.detectors_update(version=version, outcomes=first)
    adwin = DetectorState.objects.get(version=version, stream="error", kind="adwin")
    assert (adwin.n_seen, adwin.n_drifts) == (CHANGE, 0)
    second = outcomes_make(version=version, probs=[0.8] * CHANGE, labels=labels_after, at=T0)
    services.detectors_update(version=version, outcomes=second)
    adwin.refresh_from_db()
    assert adwin.n_seen == 2 * CHANGE and adwin.n_drifts >= 1
    assert DetectorState.objects.filter(version=version).count() == 6
