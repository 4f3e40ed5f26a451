"""Machine records by the generation rules of the AI4I 2020 Predictive Maintenance Dataset.

Pure numpy, no Django: the demo consortium's factories (``valuation.demo``) draw their
records here, and the rules have their own unit tests (tests/demo/test_ai4i.py). Every
draw comes from the ``numpy.random.Generator`` the caller passes, so a seed fixes every row.

The rules are those published with the dataset (S. Matzka, "Explainable Artificial
Intelligence for Predictive Maintenance Applications", 2020 Third International Conference
on Artificial Intelligence for Industries (AI4I); UCI Machine Learning Repository, 2020).
One record is one machining process of a milling machine:

- product quality L, M or H (50 / 30 / 20 % of products);
- air temperature: a random walk, normalised to a standard deviation of 2 K around 300 K;
- process temperature: the air temperature plus 10 K plus a second random walk normalised
  to a standard deviation of 1 K;
- torque: normal around 40 Nm with a standard deviation of 10 Nm, no negative values;
- rotational speed: calculated from a power of 2860 W, overlaid with normal noise;
- tool wear: each process adds 5 / 3 / 2 minutes (quality H / M / L) to the tool in use.

Five independent failure modes; the machine-failure label is true when any of them is:

- TWF, tool wear failure: at a tool wear drawn uniformly between 200 and 240 minutes the
  tool is replaced or fails (51 of 120 times in the published data); either way the next
  process starts with a new tool;
- HDF, heat dissipation failure: process minus air temperature below 8.6 K *and*
  rotational speed below 1380 rpm;
- PWF, power failure: torque times angular speed outside 3500 to 9000 W;
- OSF, overstrain failure: tool wear times torque above 11,000 / 12,000 / 13,000 min·Nm
  for quality L / M / H;
- RNF, random failure: 0.1 % of processes, whatever their parameters.

Where the published text leaves a choice, the choice here comes close to the published
statistics (speed 1539 ± 179 rpm published, 1595 ± 237 here, strongly anti-correlated with
torque in both; 3.39 % of processes fail, 3.2 % here): the spindle turns at a no-load speed of :data:`NO_LOAD_SPEED_RPM` plus the
speed at which :data:`POWER_W` deliver the drawn torque (ω = P / τ), with normal noise of
:data:`SPEED_NOISE_RPM`, and never above the drive's top speed :data:`MAX_SPEED_RPM` (the
published maximum is 2886 rpm); torque below :data:`MIN_TORQUE_NM` (the smallest in the published
data) is drawn again, which also keeps ``P / τ`` finite.

A :class:`Regime` shifts a factory away from those base rules (product mix, climate,
cooling, torque and speed set-points); ``Regime()`` is the published base. Features for a
model (:func:`features`) are the physical quantities a maintenance engineer would use,
standardised with fixed reference statistics of the base rules (:data:`REFERENCE_MEAN`,
:data:`REFERENCE_SCALE`), so that every party standardises the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FEATURE_NAMES",
    "QUALITIES",
    "REFERENCE_FAILURE_RATE",
    "REFERENCE_MEAN",
    "REFERENCE_SCALE",
    "MachineRecords",
    "Regime",
    "features",
    "flip_labels",
    "generate",
    "jitter",
]

QUALITIES = ("L", "M", "H")
BASE_QUALITY_SHARES = (0.5, 0.3, 0.2)
WEAR_PER_PROCESS_MIN = np.array([2, 3, 5])  # by quality L, M, H
OSF_LIMIT_MIN_NM = np.array([11_000.0, 12_000.0, 13_000.0])  # by quality L, M, H

AIR_TEMPERATURE_K = 300.0
AIR_TEMPERATURE_SD_K = 2.0
PROCESS_OFFSET_K = 10.0
PROCESS_SD_K = 1.0
TORQUE_MEAN_NM = 40.0
TORQUE_SD_NM = 10.0
MIN_TORQUE_NM = 3.8
POWER_W = 2860.0
NO_LOAD_SPEED_RPM = 860.0
SPEED_NOISE_RPM = 60.0
MAX_SPEED_RPM = 2900.0

TOOL_LIFE_MIN = (200, 240)
TOOL_FAILS_SHARE = 51 / 120  # of tools reaching their end of life, the share that fail in the process
HDF_MAX_DIFFERENCE_K = 8.6
HDF_MAX_SPEED_RPM = 1380.0
PWF_POWER_W = (3500.0, 9000.0)
RNF_PROBABILITY = 0.001
# The share of failing processes under the base rules, from the same 10^6 processes as the
# reference statistics below (3.39 % in the published data).
REFERENCE_FAILURE_RATE = 0.032

RPM_PER_RAD_S = 60.0 / (2.0 * math.pi)


@dataclass(frozen=True)
class Regime:
    """How one factory's machines run compared with the published base rules."""

    quality_shares: tuple[float, float, float] = BASE_QUALITY_SHARES  # L, M, H
    ambient_offset_k: float = 0.0  # climate: the hall's air is this much warmer
    cooling_offset_k: float = 0.0  # process minus air temperature, shifted (negative: poorer cooling)
    torque_offset_nm: float = 0.0  # heavier or lighter cuts
    speed_offset_rpm: float = 0.0  # spindle set-point


@dataclass(frozen=True)
class MachineRecords:
    """One row per process; the five failure modes and the label they make."""

    quality: np.ndarray  # int: 0, 1, 2 for L, M, H
    air_temperature: np.ndarray  # K
    process_temperature: np.ndarray  # K
    rotational_speed: np.ndarray  # rpm
    torque: np.ndarray  # Nm
    tool_wear: np.ndarray  # min, including this process
    twf: np.ndarray
    hdf: np.ndarray
    pwf: np.ndarray
    osf: np.ndarray
    rnf: np.ndarray

    def __len__(self) -> int:
        return int(self.quality.size)

    @property
    def power(self) -> np.ndarray:
        """Torque times angular speed, in W."""
        return self.torque * self.rotational_speed / RPM_PER_RAD_S

    @property
    def failure(self) -> np.ndarray:
        """The machine-failure label: any of the five modes."""
        return self.twf | self.hdf | self.pwf | self.osf | self.rnf


def _random_walk(rng: np.random.Generator, n: int, centre: float, sd: float) -> np.ndarray:
    """A Gaussian random walk normalised to mean ``centre`` and standard deviation ``sd``."""
    walk = np.cumsum(rng.standard_normal(n))
    spread = walk.std()
    if n < 2 or spread == 0.0:
        return np.full(n, centre)
    return centre + sd * (walk - walk.mean()) / spread


def _torque(rng: np.random.Generator, n: int, mean: float) -> np.ndarray:
    torque = rng.normal(mean, TORQUE_SD_NM, size=n)
    low = torque < MIN_TORQUE_NM
    while low.any():  # a truncated normal: no negative (or vanishing) torque
        torque[low] = rng.normal(mean, TORQUE_SD_NM, size=int(low.sum()))
        low = torque < MIN_TORQUE_NM
    return torque


def _tool_wear(rng: np.random.Generator, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tool wear per process and the tool wear failures: each process adds its quality's
    minutes; at a life drawn from TOOL_LIFE_MIN the tool is replaced or fails."""
    n = quality.size
    increments = WEAR_PER_PROCESS_MIN[quality]
    # Enough tool lives and fail/replace draws for the longest possible sequence, drawn up
    # front so that the number of draws does not depend on the path.
    tools = n // (TOOL_LIFE_MIN[0] // int(WEAR_PER_PROCESS_MIN.max())) + 2
    lives = rng.integers(TOOL_LIFE_MIN[0], TOOL_LIFE_MIN[1] + 1, size=tools)
    fails = rng.random(tools) < TOOL_FAILS_SHARE
    wear = np.empty(n, dtype=np.int64)
    twf = np.zeros(n, dtype=bool)
    tool, current = 0, 0
    for i in range(n):  # sequential by nature; a few thousand rows per factory
        current += int(increments[i])
        wear[i] = current
        if current >= lives[tool]:
            twf[i] = bool(fails[tool])
            tool, current = tool + 1, 0
    return wear.astype(np.float64), twf


def generate(rng: np.random.Generator, n: int, regime: Regime = Regime()) -> MachineRecords:
    """``n`` processes of one factory under ``regime``, by the AI4I 2020 rules."""
    if n < 1:
        raise ValueError("n must be at least 1")
    shares = np.asarray(regime.quality_shares, dtype=np.float64)
    if shares.shape != (3,) or np.any(shares < 0) or not math.isclose(shares.sum(), 1.0):
        raise ValueError("quality_shares are three non-negative shares (L, M, H) summing to 1")
    quality = rng.choice(3, size=n, p=shares)
    air = _random_walk(rng, n, AIR_TEMPERATURE_K + regime.ambient_offset_k, AIR_TEMPERATURE_SD_K)
    process = air + PROCESS_OFFSET_K + regime.cooling_offset_k + _random_walk(rng, n, 0.0, PROCESS_SD_K)
    torque = _torque(rng, n, TORQUE_MEAN_NM + regime.torque_offset_nm)
    speed = np.minimum(NO_LOAD_SPEED_RPM + regime.speed_offset_rpm + RPM_PER_RAD_S * POWER_W / torque
                       + rng.normal(0.0, SPEED_NOISE_RPM, size=n), MAX_SPEED_RPM)
    wear, twf = _tool_wear(rng, quality)
    power = torque * speed / RPM_PER_RAD_S
    return MachineRecords(
        quality=quality,
        air_temperature=air,
        process_temperature=process,
        rotational_speed=speed,
        torque=torque,
        tool_wear=wear,
        twf=twf,
        hdf=(process - air < HDF_MAX_DIFFERENCE_K) & (speed < HDF_MAX_SPEED_RPM),
        pwf=(power < PWF_POWER_W[0]) | (power > PWF_POWER_W[1]),
        osf=wear * torque > OSF_LIMIT_MIN_NM[quality],
        rnf=rng.random(n) < RNF_PROBABILITY,
    )


def jitter(rng: np.random.Generator, records: MachineRecords) -> MachineRecords:
    """A near-copy of ``records``: the same processes, tool wear and failure labels, the
    sensor readings with small noise (the same logs after an export to another system
    and back)."""
    n = len(records)
    return MachineRecords(
        quality=records.quality.copy(),
        air_temperature=records.air_temperature + rng.normal(0.0, 0.05, size=n),
        process_temperature=records.process_temperature + rng.normal(0.0, 0.05, size=n),
        rotational_speed=records.rotational_speed + rng.normal(0.0, 2.0, size=n),
        torque=records.torque + rng.normal(0.0, 0.2, size=n),
        tool_wear=records.tool_wear.copy(),
        twf=records.twf.copy(), hdf=records.hdf.copy(), pwf=records.pwf.copy(),
        osf=records.osf.copy(), rnf=records.rnf.copy(),
    )


def flip_labels(rng: np.random.Generator, labels: np.ndarray, share: float) -> np.ndarray:
    """Labels with each one flipped with probability ``share`` (a maintenance log whose
    failure column is unreliable)."""
    flipped = rng.random(labels.size) < share
    return np.where(flipped, 1.0 - labels, labels)


FEATURE_NAMES = (
    "air_temperature",
    "temperature_difference",
    "rotational_speed",
    "torque",
    "tool_wear",
    "power",
    "strain",
    "quality_m",
    "quality_h",
)
# Mean and standard deviation of each feature under the base rules (Regime()), from 100
# independent factories of 10,000 processes each, rounded; tests/demo/test_ai4i.py checks them against a fresh sample.
REFERENCE_MEAN = np.array([300.0, 10.0, 1595.0, 40.0, 112.0, 6460.0, 4480.0, 0.3, 0.2])
REFERENCE_SCALE = np.array([2.0, 1.0, 237.0, 10.0, 64.4, 944.0, 2880.0, 0.458, 0.4])


def features(records: MachineRecords) -> np.ndarray:
    """The model's inputs, standardised with the reference statistics: air temperature,
    process minus air temperature (heat dissipation), speed, torque, tool wear, power
    (torque × angular speed), strain (tool wear × torque) and the quality (one-hot M, H)."""
    raw = np.column_stack([
        records.air_temperature,
        records.process_temperature - records.air_temperature,
        records.rotational_speed,
        records.torque,
        records.tool_wear,
        records.power,
        records.tool_wear * records.torque,
        records.quality == 1,
        records.quality == 2,
    ]).astype(np.float64)
    return (raw - REFERENCE_MEAN) / REFERENCE_SCALE
