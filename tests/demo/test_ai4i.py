"""The demo's machine records follow the AI4I 2020 generation rules (valuation/demo_ai4i.py).

What a maintenance engineer who knows the published dataset would check: the failure rate,
each failure mode's rule (both HDF conditions, OSF limits by quality, the PWF power band),
tool wear by quality and tool life, the sensor distributions, and that a factory's regime
moves what it should. Pure numpy: no database.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from valuation import demo_ai4i as ai4i
from valuation.demo_ai4i import MachineRecords, Regime, generate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base() -> MachineRecords:
    """50,000 processes under the published rules (one random walk, so one 'factory')."""
    return generate(np.random.default_rng(2020), 50_000)


def test_the_failure_rate_is_in_the_published_range():
    # One random walk of temperatures makes heat-dissipation failures come in spells, so a
    # single factory's rate varies (2.3 to 4 % for 10,000 processes); the rules' rate is
    # the mean over many factories: 3.39 % in the published data.
    rates = [generate(np.random.default_rng(seed), 5_000).failure.mean() for seed in range(30)]
    assert 0.028 <= np.mean(rates) <= 0.040
    assert all(0.01 <= rate <= 0.06 for rate in rates)


def test_each_failure_mode_occurs_about_as_often_as_published(base):
    # Published, per 10,000 processes: TWF 46, HDF 115, PWF 95, OSF 98, RNF 19 (5 by the text).
    rates = {mode: getattr(base, mode).mean() for mode in ("twf", "hdf", "pwf", "osf", "rnf")}
    assert 0.002 <= rates["twf"] <= 0.009
    assert 0.002 <= rates["hdf"] <= 0.03
    assert 0.003 <= rates["pwf"] <= 0.015
    assert 0.005 <= rates["osf"] <= 0.02
    assert 0.0003 <= rates["rnf"] <= 0.002


def test_the_machine_failure_label_is_any_failure_mode(base):
    modes = base.twf | base.hdf | base.pwf | base.osf | base.rnf
    assert np.array_equal(base.failure, modes)
    assert base.failure.dtype == bool


def test_heat_dissipation_fails_only_when_both_conditions_hold(base):
    small_difference = base.process_temperature - base.air_temperature < 8.6
    slow = base.rotational_speed < 1380
    assert np.array_equal(base.hdf, small_difference & slow)
    # Each condition alone happens, and is no HDF.
    assert (small_difference & ~slow).sum() > 100 and not base.hdf[small_difference & ~slow].any()
    assert (slow & ~small_difference).sum() > 100 and not base.hdf[slow & ~small_difference].any()


def test_overstrain_limits_depend_on_the_product_quality(base):
    strain = base.tool_wear * base.torque
    limits = {0: 11_000, 1: 12_000, 2: 13_000}  # L, M, H, in min·Nm
    for quality, limit in limits.items():
        rows = base.quality == quality
        assert np.array_equal(base.osf[rows], strain[rows] > limit)
    # Between 11,000 and 12,000 min·Nm an L product fails, an M or H product does not.
    band = (strain > 11_000) & (strain <= 12_000)
    assert base.osf[band & (base.quality == 0)].all() and (band & (base.quality == 0)).sum() > 10
    assert not base.osf[band & (base.quality > 0)].any() and (band & (base.quality > 0)).sum() > 10
    # Between 12,000 and 13,000 an M product fails, an H product does not.
    band = (strain > 12_000) & (strain <= 13_000)
    assert base.osf[band & (base.quality == 1)].all() and (band & (base.quality == 1)).sum() > 5
    assert not base.osf[band & (base.quality == 2)].any() and (band & (base.quality == 2)).sum() > 5


def test_power_failures_are_the_processes_outside_3500_to_9000_watts(base):
    power = base.torque * base.rotational_speed * 2 * np.pi / 60
    assert np.allclose(base.power, power)
    assert np.array_equal(base.pwf, (power < 3500) | (power > 9000))
    assert base.pwf[power < 3500].size and base.pwf[power > 9000].size  # both ends of the band occur


def test_tool_wear_grows_by_quality_and_the_tool_is_changed_between_200_and_240_minutes(base):
    increments = np.array([2, 3, 5])[base.quality]  # L, M, H add 2, 3, 5 minutes
    step = np.diff(base.tool_wear, prepend=0.0)
    new_tool = base.tool_wear == increments  # the first process of a tool
    assert np.array_equal(step[~new_tool], increments[~new_tool])
    # The process before a new tool is the old tool's last: between 200 and 240 minutes
    # (the life drawn), plus at most that process's own minutes.
    last = np.flatnonzero(new_tool[1:])
    assert last.size > 100
    assert base.tool_wear[last].min() >= 200 and base.tool_wear[last].max() <= 244
    assert base.tool_wear.max() <= 244 and base.tool_wear.min() >= 2
    # Tool wear failures happen only at a tool's end of life; about 51 of 120 fail.
    assert set(np.flatnonzero(base.twf)) <= set(last)
    assert 0.3 <= base.twf.sum() / last.size <= 0.55


def test_sensor_readings_follow_the_published_distributions(base):
    assert base.air_temperature.mean() == pytest.approx(300.0) and base.air_temperature.std() == pytest.approx(2.0)
    difference = base.process_temperature - base.air_temperature
    assert difference.mean() == pytest.approx(10.0) and difference.std() == pytest.approx(1.0)
    assert base.torque.min() > 0 and base.torque.mean() == pytest.approx(40, abs=0.3)
    assert base.torque.std() == pytest.approx(10, abs=0.3)
    # Speed follows from 2860 W at the torque: about 1,500-1,600 rpm, falling as torque rises.
    assert 1500 <= base.rotational_speed.mean() <= 1650 and base.rotational_speed.max() <= 2900
    assert np.corrcoef(base.torque, base.rotational_speed)[0, 1] < -0.8
    shares = np.bincount(base.quality, minlength=3) / len(base)
    assert np.allclose(shares, [0.5, 0.3, 0.2], atol=0.01)


def test_temperatures_are_random_walks_not_independent_draws(base):
    # A random walk changes little from one process to the next; independent draws would not.
    steps = np.diff(base.air_temperature)
    assert np.abs(steps).mean() < 0.1 * base.air_temperature.std()


def test_a_factory_regime_shifts_what_it_says():
    rng = np.random.default_rng(7)
    regime = Regime(quality_shares=(0.2, 0.3, 0.5), ambient_offset_k=4.0, cooling_offset_k=-0.5,
                    torque_offset_nm=5.0, speed_offset_rpm=50.0)
    shifted = generate(rng, 20_000, regime)
    reference = generate(np.random.default_rng(7), 20_000)
    assert shifted.air_temperature.mean() == pytest.approx(304.0)
    assert (shifted.process_temperature - shifted.air_temperature).mean() == pytest.approx(9.5)
    assert shifted.torque.mean() == pytest.approx(45, abs=0.3)
    assert np.allclose(np.bincount(shifted.quality, minlength=3) / 20_000, [0.2, 0.3, 0.5], atol=0.015)
    # More H products: more wear per process, so tools are changed more often.
    assert (shifted.tool_wear == np.array([2, 3, 5])[shifted.quality]).sum() > \
        (reference.tool_wear == np.array([2, 3, 5])[reference.quality]).sum()


def test_the_same_seed_gives_the_same_records_and_another_seed_others():
    one, again = generate(np.random.default_rng(11), 3_000), generate(np.random.default_rng(11), 3_000)
    other = generate(np.random.default_rng(12), 3_000)
    for name in ("quality", "air_temperature", "rotational_speed", "torque", "tool_wear", "twf", "rnf"):
        assert np.array_equal(getattr(one, name), getattr(again, name)), name
    assert not np.array_equal(one.torque, other.torque)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        generate(np.random.default_rng(0), 0)
    with pytest.raises(ValueError):
        generate(np.random.default_rng(0), 10, Regime(quality_shares=(0.5, 0.5, 0.5)))


def test_features_are_standardised_with_reference_statistics_close_to_the_rules():
    rows = np.vstack([ai4i.features(generate(np.random.default_rng(seed), 5_000)) for seed in range(20)])
    assert rows.shape[1] == len(ai4i.FEATURE_NAMES)
    assert np.all(np.abs(rows.mean(axis=0)) < 0.1)
    assert np.all(np.abs(rows.std(axis=0) - 1) < 0.1)


def test_the_reference_failure_rate_is_the_rules_rate():
    rates = [generate(np.random.default_rng(100 + seed), 5_000).failure.mean() for seed in range(30)]
    assert ai4i.REFERENCE_FAILURE_RATE == pytest.approx(np.mean(rates), abs=0.004)


def test_a_near_copy_keeps_the_rows_and_labels_with_small_jitter(base):
    copy = ai4i.jitter(np.random.default_rng(1), base)
    assert np.array_equal(copy.failure, base.failure) and np.array_equal(copy.quality, base.quality)
    assert np.abs(copy.torque - base.torque).max() < 1.5 and not np.array_equal(copy.torque, base.torque)
    assert np.corrcoef(ai4i.features(copy)[:, 2], ai4i.features(base)[:, 2])[0, 1] > 0.99


def test_flipping_labels_flips_about_the_share_asked():
    labels = np.zeros(20_000)
    flipped = ai4i.flip_labels(np.random.default_rng(3), labels, 0.4)
    assert flipped.mean() == pytest.approx(0.4, abs=0.015)


def test_the_generator_is_pure_numpy_and_loads_without_django():
    code = ("import sys; import valuation.demo_ai4i, valuation.demo_consortium; "
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')); "
            "print(loaded); sys.exit(1 if loaded else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
