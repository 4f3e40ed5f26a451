"""KernelSHAP with paired sampling, through the ``shap`` package (Lundberg & Lee 2017).

Recipe (docs/valuation.md): players are the columns of a 0/1 matrix, background
``zeros((1, n))``, instance ``ones((1, n))``, the model is the coalition utility, and
``l1_reg=False`` always (shap's default silently zeroes players beyond ten).
KernelExplainer draws from numpy's *global* generator, so we seed it for the call (with
the estimate's own seed where possible, see :func:`shap_seed`) and restore it
afterwards, under a lock so concurrent estimates cannot interleave. With equal seed and
budget the values are shap's own: ``nsamples = budget - 2`` distinct coalitions besides
∅ and N (shap never repeats one), and shap's values are already efficient, so the
caller's projection moves nothing beyond rounding.
"""

from __future__ import annotations

import threading

import numpy as np

from .common import EstimatorContext, RawEstimate

__all__ = ["kernel_shap", "shap_seed", "warm_up_shap"]

_SHAP_LOCK = threading.Lock()
_warmed_up = False


def warm_up_shap():
    """Import shap and run one tiny explanation, once per process (import costs seconds)."""
    global _warmed_up
    import shap  # deferred: importing shap takes seconds and most estimates never need it

    if not _warmed_up:
        with _SHAP_LOCK:
            if not _warmed_up:
                state = np.random.get_state()
                try:
                    np.random.seed(0)
                    explainer = shap.KernelExplainer(lambda x: x.sum(axis=1), np.zeros((1, 3)))
                    explainer.shap_values(np.ones((1, 3)), nsamples=6, l1_reg=False, silent=True)
                finally:
                    np.random.set_state(state)
                _warmed_up = True
    return shap


def kernel_shap(context: EstimatorContext) -> RawEstimate:
    shap = warm_up_shap()
    n, oracle = context.n, context.oracle
    # shap's nsamples counts coalitions other than ∅ and N, which are already evaluated.
    nsamples = int(min(oracle.remaining, 2**n - 2)) if n < 63 else int(oracle.remaining)
    if nsamples < 1:
        raise ValueError("kernel needs a budget of at least 3 coalitions")

    def model(data: np.ndarray) -> np.ndarray:
        return oracle.evaluate(np.asarray(data) > 0.5)

    seed = shap_seed(context.rng)
    with _SHAP_LOCK:
        state = np.random.get_state()
        try:
            np.random.seed(seed)
            explainer = shap.KernelExplainer(model, np.zeros((1, n)))
            values = explainer.shap_values(np.ones((1, n)), nsamples=nsamples, l1_reg=False, silent=True)
        finally:
            np.random.set_state(state)
    values = np.asarray(values, dtype=np.float64).reshape(-1)[:n]
    complete = n < 63 and explainer.nsamplesAdded >= 2**n - 2
    stderr = np.zeros(n) if complete else _regression_stderr(explainer, n, values, context.u_empty)
    return RawEstimate(values=values, stderr=stderr, info={"shap_samples": int(explainer.nsamplesAdded)})


def shap_seed(rng: np.random.Generator) -> int:
    """The seed for numpy's global generator during the shap call.

    The estimate's own seed when ``rng`` is still exactly ``PCG64(seed)`` for a seed below
    2**32 (what ``estimate(..., seed=s)`` passes for a single game), so ``kernel`` with
    seed s *is* shap's KernelExplainer after ``np.random.seed(s)``, value for value, and a
    benchmark comparing the two at equal seeds compares like with like. Otherwise (the
    rounds of a multi-round game, a generator already drawn from) a draw from ``rng``.
    """
    bit_generator = rng.bit_generator
    seed_sequence = getattr(bit_generator, "seed_seq", None)
    entropy = getattr(seed_sequence, "entropy", None)
    if (
        isinstance(bit_generator, np.random.PCG64)
        and isinstance(entropy, int)
        and 0 <= entropy < 2**32
        and not getattr(seed_sequence, "spawn_key", ())
        and np.random.PCG64(entropy).state == bit_generator.state
    ):
        return entropy
    return int(rng.integers(0, 2**32 - 1))


def _regression_stderr(explainer, n: int, values: np.ndarray, u_empty: float) -> np.ndarray:
    # Weighted least-squares sandwich on shap's own design: an approximation (the
    # sample is stratified and paired, not i.i.d.), labelled as such in the docs.
    design = np.asarray(explainer.maskMatrix, dtype=np.float64)[: explainer.nsamplesAdded]
    weights = np.asarray(explainer.kernelWeights, dtype=np.float64)[: explainer.nsamplesAdded]
    outputs = np.asarray(explainer.ey, dtype=np.float64)[: explainer.nsamplesAdded].reshape(-1)
    residual = outputs - u_empty - design @ values
    degrees = max(design.shape[0] - n, 1)
    sigma2 = float(weights @ residual**2) / max(weights.sum(), 1e-300) * design.shape[0] / degrees
    gram = design.T @ (design * weights[:, None]) / max(weights.sum(), 1e-300)
    inverse = np.linalg.pinv(gram)
    return np.sqrt(np.maximum(np.diag(inverse), 0.0) * sigma2 / design.shape[0])
