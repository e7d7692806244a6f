"""Control charts: limits equal hand-computed values, each Western Electric rule fires on a
series built to break it (and only where it breaks), none fires on stationary series."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitoring import spc


def test_individuals_limits_are_mean_and_three_sample_sigmas_of_the_baseline():
    # baseline 1..5: mean 3, sample variance 2.5 → σ = 1.5811, limits 3 ± 4.7434
    chart = spc.individuals_chart([1, 2, 3, 4, 5, 3, 8.0], baseline=5)
    assert chart.center == pytest.approx(3.0)
    assert chart.sigma[0] == pytest.approx(math.sqrt(2.5))
    assert chart.ucl[0] == pytest.approx(7.7434, abs=1e-4)
    assert chart.lcl[0] == pytest.approx(-1.7434, abs=1e-4)
    assert chart.signals == [[], [], [], [], [], [], [1]]  # 8 > 7.7434
    assert chart.out_of_control


def test_proportion_limits_widen_with_fewer_trials():
    # p̄ = 24/30 = 0.8; σ(n=10) = √(0.8·0.2/10) = 0.12649, σ(n=40) = 0.06325
    chart = spc.proportion_chart([8, 9, 7, 32, 2], [10, 10, 10, 40, 10], baseline=3)
    assert chart.center == pytest.approx(0.8)
    assert chart.sigma[0] == pytest.approx(0.126491, abs=1e-6)
    assert chart.sigma[3] == pytest.approx(0.063246, abs=1e-6)
    assert chart.lcl[0] == pytest.approx(0.420526, abs=1e-6)
    assert chart.values[4] == pytest.approx(0.2)
    assert chart.signals[4] == [1] and chart.signals[3] == []  # 0.2 < 0.4205


def test_mean_chart_pools_the_baseline_deviations():
    # centre (1·5 + 2·5)/10 = 1.5; s_pooled = √((4·1 + 4·1)/8) = 1; σ(n=4) = 0.5
    chart = spc.mean_chart([1, 2, 3.6], [1, 1, 1], [5, 5, 4], baseline=2)
    assert chart.center == pytest.approx(1.5)
    assert chart.sigma[2] == pytest.approx(0.5)
    assert chart.ucl[2] == pytest.approx(3.0)
    assert chart.signals[2] == [1]


def test_too_short_a_baseline_judges_nothing():
    chart = spc.individuals_chart([0.9, 0.1, 0.9], baseline=1)
    assert chart.center is None and chart.signals == [[], [], []]
    assert not chart.out_of_control


@pytest.mark.parametrize(
    ("z", "rule", "at"),
    [
        ([0, 0.4, -0.3, 3.2], 1, 3),  # beyond 3σ
        ([0, -3.5], 1, 1),
        ([0.2, 2.4, 0.5, 2.6], 2, 3),  # 2 of 3 beyond 2σ above
        ([-2.2, -2.5], 2, 1),  # …or below
        ([0.1, 1.5, 1.2, -0.4, 1.8, 1.1], 3, 5),  # 4 of 5 beyond 1σ above
        ([0.3, 0.5, 0.2, 0.8, 0.1, 0.4, 0.9, 0.6], 4, 7),  # 8 in a row above
        ([-0.3, -0.5, -0.2, -0.8, -0.1, -0.4, -0.9, -0.6], 4, 7),
    ],
)
def test_each_western_electric_rule_fires_where_its_pattern_completes(z, rule, at):
    signals = spc.western_electric(z, rules=spc.ALL_RULES)
    assert rule in signals[at]
    assert all(rule not in s for i, s in enumerate(signals) if i != at)
    # and only when it is chosen
    assert all(
        rule not in s
        for s in spc.western_electric(z, rules=[r for r in spc.ALL_RULES if r != rule])
    )


def test_runs_need_one_side_and_the_completing_point_beyond():
    assert spc.western_electric([2.5, 0, -2.5], rules=[2]) == [[], [], []]  # two sides
    assert spc.western_electric([2.5, 2.5, 0.1], rules=[2]) == [[], [2], []]  # last not beyond
    # 7 above then one below: no rule-4 run
    assert spc.western_electric([0.5] * 7 + [-0.5], rules=[4])[-1] == []
    # a missing point breaks a run
    assert spc.western_electric([0.5] * 4 + [None] + [0.5] * 4, rules=[4])[-1] == []


def test_stationary_series_raise_no_signal():
    # A series alternating about its centre is in control under all four rules; seeded
    # noise under rule 1 (all four together have an in-control run length of only ~90
    # points, so on noise they do fire now and then, as they should).
    alternating = [0.8 + 0.02 * (-1) ** i for i in range(60)]
    chart = spc.individuals_chart(alternating, baseline=10, rules=spc.ALL_RULES)
    assert all(s == [] for s in chart.signals)
    rng = np.random.default_rng(7)
    noisy = list(0.85 + 0.02 * rng.standard_normal(40))
    assert all(s == [] for s in spc.individuals_chart(noisy, baseline=20, rules=(1,)).signals)
    p = spc.proportion_chart(rng.binomial(50, 0.9, 30), [50] * 30, baseline=10, rules=spc.ALL_RULES)
    assert all(s == [] for s in p.signals)


def test_a_shift_is_found_by_the_run_rules_before_rule_one():
    rng = np.random.default_rng(3)
    series = list(0.85 + 0.02 * rng.standard_normal(20)) + [0.85 - 0.03] * 8  # −1.5σ shift
    chart = spc.individuals_chart(series, baseline=20, rules=spc.ALL_RULES)
    fired = {r for s in chart.signals[20:] for r in s}
    assert fired and 1 not in fired
    assert not any(spc.individuals_chart(series, baseline=20, rules=(1,)).signals)


def test_rules_parse():
    assert spc.rules_parse("we") == (1, 2, 3, 4)
    assert spc.rules_parse("4,1") == (1, 4)
    assert spc.rules_parse(None) == (1,)
    for bad in ("5", "x", ","):
        with pytest.raises(ValueError, match="rules"):
            spc.rules_parse(bad)
