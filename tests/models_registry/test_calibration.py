"""Calibration: temperature and Platt scaling, ECE/MCE/Brier/NLL, noise floor."""

from __future__ import annotations

import numpy as np
import pytest

from models_registry import calibration


def synthetic_margins(*, n: int, scale: float, seed: int) -> np.ndarray:
    """Margins (chosen − rejected) whose true P(chosen ≻ rejected) is σ(z), shown as
    σ(scale·z): over-confident when scale > 1, under-confident when scale < 1.
    The chosen response is the one humans preferred, so sign flips mark the pairs the
    true model would get wrong."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, n)
    human_prefers_first = rng.random(n) < 1 / (1 + np.exp(-z))
    return scale * np.where(human_prefers_first, z, -z)


def test_temperature_scaling_lowers_ece_on_over_confident_scores():
    margins = synthetic_margins(n=2000, scale=4.0, seed=1)
    fitted = calibration.calibration_fit(margins)
    assert fitted["temperature"] > 2.0  # it undoes the over-confidence
    assert fitted["after"]["ece"] < 0.5 * fitted["before"]["ece"]
    assert fitted["after"]["nll"] < fitted["before"]["nll"]
    assert fitted["after"]["brier"] < fitted["before"]["brier"]


def test_temperature_scaling_sharpens_under_confident_scores():
    fitted = calibration.calibration_fit(synthetic_margins(n=2000, scale=0.3, seed=2))
    assert fitted["temperature"] < 0.6
    assert fitted["after"]["ece"] < fitted["before"]["ece"]


@pytest.mark.parametrize("scale", [0.2, 1.0, 5.0])
@pytest.mark.parametrize("seed", [3, 4, 5])
def test_temperature_scaling_never_raises_nll_on_its_own_data(scale, seed):
    margins = synthetic_margins(n=50, scale=scale, seed=seed)
    fitted = calibration.calibration_fit(margins)
    assert fitted["after"]["nll"] <= fitted["before"]["nll"] + 1e-12


def test_platt_scaling_is_fitted_and_nearly_symmetric():
    fitted = calibration.calibration_fit(synthetic_margins(n=1000, scale=3.0, seed=6))
    assert fitted["platt"]["a"] == pytest.approx(1 / fitted["temperature"], rel=0.15)
    assert abs(fitted["platt"]["b"]) < 0.05  # each pair scored both ways
    assert fitted["platt_after"]["ece"] < fitted["before"]["ece"]


def test_metrics_on_a_known_case():
    probs = np.array([0.9, 0.9, 0.9, 0.9, 0.1])
    labels = np.array([1, 1, 1, 0, 0])
    metrics = calibration.calibration_metrics(probs, labels)
    assert metrics["accuracy"] == pytest.approx(0.8)
    # Bin 0.9: accuracy 0.75 vs 0.9 (gap 0.15, weight 4/5); bin 0.1: 0 vs 0.1 (0.1, 1/5).
    assert metrics["ece"] == pytest.approx(0.8 * 0.15 + 0.2 * 0.1)
    assert metrics["mce"] == pytest.approx(0.15)
    assert metrics["brier"] == pytest.approx((3 * 0.01 + 0.81 + 0.01) / 5)
    assert metrics["reliability"]["counts"] == [1, 4]


def test_the_noise_floor_is_what_a_calibrated_model_shows_and_shrinks_with_size():
    rng = np.random.default_rng(7)
    small = calibration.ece_noise_floor(rng.uniform(0.05, 0.95, 100), rounds=100)
    large = calibration.ece_noise_floor(rng.uniform(0.05, 0.95, 5000), rounds=20)
    assert small["ece_mean"] > 0.02  # several points at a hundred pairs
    assert large["ece_mean"] < small["ece_mean"] / 3


def test_cross_fitting_judges_each_pair_with_a_fit_it_did_not_take_part_in():
    report = calibration.calibration_cross_fitted(synthetic_margins(n=600, scale=4.0, seed=8))
    assert len(report["temperatures"]) == 5 * report["repeats"]
    assert report["ece_cut"] > 0.3
    assert report["after"]["nll"] < report["before"]["nll"]
    assert report["nll_change"] == pytest.approx(report["after"]["nll"] - report["before"]["nll"])
    assert "ece_mean" in report["noise_floor"] and "ece_mean" in report["noise_floor_raw"]


def test_one_partition_pairs_each_margin_with_the_other_folds_temperature():
    from scipy.special import expit
    from sklearn.model_selection import KFold

    margins = synthetic_margins(n=200, scale=3.0, seed=4)
    report = calibration.calibration_cross_fitted(margins, repeats=1, seed=3)
    calibrated = np.empty_like(margins)
    for train, test in KFold(n_splits=5, shuffle=True, random_state=3).split(margins):
        calibrated[test] = margins[test] / calibration.temperature_fit(
            *calibration._symmetric(margins[train])
        )
    expected = calibration.calibration_metrics(*_both_ways(expit(calibrated)))
    assert report["after"]["ece"] == pytest.approx(expected["ece"])
    assert report["after"]["nll"] == pytest.approx(expected["nll"])


def test_repeated_partitions_average_the_after_figures_and_give_the_cut_range():
    margins = synthetic_margins(n=240, scale=2.0, seed=5)
    singles = [
        calibration.calibration_cross_fitted(margins, repeats=1, seed=seed) for seed in range(4)
    ]
    report = calibration.calibration_cross_fitted(margins, repeats=4, seed=0)
    assert report["after"]["ece"] == pytest.approx(np.mean([r["after"]["ece"] for r in singles]))
    assert report["ece_cut_range"] == pytest.approx(
        [min(r["ece_cut"] for r in singles), max(r["ece_cut"] for r in singles)]
    )
    assert report["before"] == singles[0]["before"]  # raw figures ignore the partition


def test_a_version_stores_cross_fitted_figures_beside_the_in_sample_ones():
    fitted = calibration.calibration_fit(synthetic_margins(n=300, scale=3.0, seed=6))
    cross = fitted["cross_fitted"]
    assert cross["repeats"] == calibration.CROSS_FIT_REPEATS
    assert cross["after"]["ece"] < cross["before"]["ece"]
    assert "reliability" not in cross["after"] and "temperatures" not in cross
    # out of sample, the fit looks no better than in sample
    assert cross["after"]["nll"] >= fitted["after"]["nll"] - 1e-9
    assert "too few" in calibration.calibration_fit([0.5, -0.2, 1.0])["cross_fitted"]["note"]


def _both_ways(probs):
    return np.concatenate([probs, 1 - probs]), np.concatenate(
        [np.ones_like(probs), np.zeros_like(probs)]
    )
