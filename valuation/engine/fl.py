"""Federated-learning games: one training round, and the sum over rounds.

Round t's utility of a coalition S is the validation metric of the FedAvg
reconstruction ``w_t + Σ_{i∈S} n_i Δ_i / Σ_{j∈S} n_j`` (``metric(w_t)`` for ∅).
Internally a coalition is its row of *mixing weights* ``p_i(S) = n_i [i∈S] / n_S``;
the model of any mixture p is ``w_t + Σ p_i Δ_i``. Evaluating arbitrary mixtures (not
just coalitions) is what lets the control-variate estimator differentiate the metric
along the participants' updates.

Everything is batched over coalitions and chunked so that scratch memory stays under
``memory_limit_bytes`` whatever the number of coalitions or participants. Coalition
utilities go through :class:`~valuation.engine.aggregation.CoalitionAggregator`, whose
exact sums make a coalition's utility independent of the batch it is evaluated in (and
of whether exact enumeration computed it block-wise); utilities at arbitrary mixtures,
used only to build surrogates, take the plain matmul route.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .aggregation import AffineOutputs, CoalitionAggregator
from .expansions import analytic_expansions, gauss_newton_expansion
from .families import check_output_count, get_model_family, parameter_shapes
from .metrics import check_metric, evaluate_metric, is_smooth_metric, signed_log_loss, smooth_proxy

__all__ = ["FLRoundGame", "MultiRoundGame", "DEFAULT_MEMORY_LIMIT", "GAUSS_NEWTON_PLAYERS"]

DEFAULT_MEMORY_LIMIT = 2 * 1024**3
# About 8 MB of outputs per chunk keeps the elementwise passes in cache-friendly
# blocks; measured ~4x faster than one huge block on a 2-core machine.
_TARGET_CHUNK_ELEMENTS = 1 << 20
# Linear families aggregate parameters instead of outputs once there are this many
# participants per parameter: per coalition, n·L multiply-adds in one BLAS call against
# n·P + 2·P·L elementwise (measured break-even near n = 16 P on a 2-core machine).
_PARAMETER_ROUTE_PLAYERS_PER_PARAMETER = 16
# Above this many participants, games without an analytic expansion get the
# Gauss–Newton one (O(n + r²) evaluations) instead of 2n² + 1 finite differences.
GAUSS_NEWTON_PLAYERS = 40


def _finite_array(value: Any, *, name: str, ndim: int | None = None) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric") from None
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has non-finite values (nan or inf)")
    return array


def _check_parameters(weights: Any, shapes: dict[str, tuple[int, ...]], *, name: str) -> dict[str, np.ndarray]:
    if not isinstance(weights, Mapping):
        raise ValueError(f"{name} must be a mapping of parameter names to arrays")
    if set(weights) != set(shapes):
        raise ValueError(f"{name} has arrays {sorted(weights)}; expected {sorted(shapes)}")
    checked = {}
    for key, shape in shapes.items():
        array = _finite_array(weights[key], name=f"{name}[{key!r}]")
        if array.shape != tuple(shape):
            raise ValueError(f"{name}[{key!r}] has shape {array.shape}; expected {tuple(shape)}")
        checked[key] = array
    return checked


class FLRoundGame:
    """The coalition game of one FL round, evaluated in vectorised numpy."""

    def __init__(
        self,
        *,
        family: str,
        task: str,
        metric: str,
        global_weights: Mapping[str, Any],
        updates: Sequence[Mapping[str, Any]],
        num_examples: Sequence[float],
        X: Any,
        y: Any,
        participants: Sequence[str] | None = None,
        memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        self.family_name = family
        self.family = get_model_family(family)
        if task not in self.family.tasks:
            raise ValueError(f"model family {family!r} does not support task {task!r}; it supports {self.family.tasks}")
        self.task, self.metric = task, metric
        self.X = _finite_array(X, name="X", ndim=2)
        self.y = _finite_array(y, name="y", ndim=1)
        if self.y.shape[0] != self.X.shape[0] or self.X.shape[0] == 0:
            raise ValueError(f"X has {self.X.shape[0]} rows and y has {self.y.shape[0]}; need the same, at least one")
        if len(updates) < 1:
            raise ValueError("a round needs at least one participant update")
        if len(num_examples) != len(updates):
            raise ValueError(f"{len(updates)} updates but {len(num_examples)} example counts")
        shapes = parameter_shapes(self.family, n_features=self.X.shape[1], task=task, weights=global_weights)
        self.global_weights = _check_parameters(global_weights, shapes, name="global_weights")
        checked_updates = [_check_parameters(u, shapes, name=f"updates[{i}]") for i, u in enumerate(updates)]
        self.num_examples = _finite_array(num_examples, name="num_examples", ndim=1)
        if np.any(self.num_examples <= 0):
            raise ValueError("num_examples must all be positive")
        self.n_players = len(checked_updates)
        self.participants = [str(p) for p in participants] if participants is not None else [str(i) for i in range(self.n_players)]
        if len(self.participants) != self.n_players or len(set(self.participants)) != self.n_players:
            raise ValueError("participants must be unique, one per update")
        self.n_outputs = _n_outputs(self.family, self.global_weights, self.X)
        try:
            check_output_count(task, self.n_outputs)
        except ValueError as exc:
            raise ValueError(f"model family {family!r} predicts {self.n_outputs} outputs per row: {exc}") from None
        check_metric(metric, task, self.y, self.n_outputs)
        if memory_limit_bytes < 1:
            raise ValueError("memory_limit_bytes must be positive")
        self.memory_limit_bytes = int(memory_limit_bytes)
        self.updates = {key: np.stack([u[key] for u in checked_updates]) for key in shapes}
        self._output_basis = self._precompute_output_basis() if self.family.linear_in_weights else None
        self._aggregator, self._signed_log_loss = self._coalition_aggregator()
        self._proxy = None
        self._width: float | None = None

    # -- coalitions and mixtures -------------------------------------------------
    def mixture_weights(self, coalitions: np.ndarray) -> np.ndarray:
        """FedAvg mixing weights (k, n) of bool coalitions (k, n); zero rows for ∅."""
        weighted = np.asarray(coalitions, dtype=np.float64) * self.num_examples
        totals = weighted.sum(axis=1, keepdims=True)
        return np.divide(weighted, totals, out=np.zeros_like(weighted), where=totals > 0)

    def utility(self, coalitions: np.ndarray) -> np.ndarray:
        coalitions = np.asarray(coalitions)
        if coalitions.ndim != 2 or coalitions.shape[1] != self.n_players:
            raise ValueError(f"coalitions must have shape (k, {self.n_players}), got {coalitions.shape}")
        coalitions = coalitions.astype(bool)
        values = np.empty(coalitions.shape[0])
        step = self._rows_per_chunk()
        for start in range(0, coalitions.shape[0], step):
            combined = self._aggregator.combine(coalitions[start : start + step])
            values[start : start + step] = self._metric_of_aggregates(combined)
        return values

    def utility_block(self, high: int, low_bits: int) -> np.ndarray:
        """Utilities of the 2^low_bits coalitions whose bitmask is ``high | low``, in
        order of ``low`` (exact enumeration's fast path; same bits as :meth:`utility`)."""
        return self._metric_of_aggregates(self._aggregator.block(high, low_bits))

    @property
    def block_bits(self) -> int:
        """Largest ``low_bits`` whose block fits the chunk size."""
        return max(0, min(self.n_players, int(np.log2(self._rows_per_chunk()))))

    @property
    def smooth_utility_is_exact(self) -> bool:
        """True when :meth:`smooth_utility` is the metric itself (log-loss, RMSE)."""
        return is_smooth_metric(self.metric)

    def smooth_utility(self, mixtures: np.ndarray) -> np.ndarray:
        """A smooth stand-in for the metric at each mixture (see ``metrics.smooth_proxy``)."""
        if self._proxy is None:
            width = 1.0 if self.smooth_utility_is_exact else self._smoothing_width()
            self._proxy = smooth_proxy(self.metric, self.task, self.y, scale=width)
        return self._map_chunks(mixtures, self._proxy)

    def taylor_expansions(self) -> list[tuple[np.ndarray, float, np.ndarray, np.ndarray]] | None:
        """Second-order expansions of smooth stand-ins for the metric around the grand
        coalition's mixture, each ``(anchor, value, gradient (n,), hessian (n, n))``; see
        :mod:`~valuation.engine.expansions`.

        Linear families with one output per row and a metric with closed-form
        derivatives: analytic in output space (log-loss and RMSE: the metric itself;
        step metrics: the sigmoid-smoothed metric at two widths plus, for binary tasks,
        the log-loss, whose mix the estimator fits to the evaluated coalitions). Other
        games above ``GAUSS_NEWTON_PLAYERS``: the Gauss–Newton expansion of the smooth
        proxy. None otherwise (the estimator then takes all 2n² + 1 finite differences).
        """
        anchor = self.mixture_weights(np.ones((1, self.n_players), dtype=bool))[0]
        # Smooth metrics ignore the width; computing it costs 2n + 1 model outputs.
        width = 1.0 if self.smooth_utility_is_exact else self._smoothing_width()
        if self._output_basis is not None and self.n_outputs == 1:
            stand_ins = [(self.metric, width)]
            if not self.smooth_utility_is_exact:
                stand_ins.append((self.metric, width / 4))
                if self.task == "binary":
                    stand_ins.append(("neg_log_loss", width))
            analytic = analytic_expansions(anchor=anchor, output_basis=self._output_basis, y=self.y, stand_ins=stand_ins)
            if analytic is not None:
                return analytic
        if self.n_players <= GAUSS_NEWTON_PLAYERS:
            return None
        if self._proxy is None:
            self._proxy = smooth_proxy(self.metric, self.task, self.y, scale=width)
        expansion = gauss_newton_expansion(
            anchor=anchor, outputs_of=self._outputs, smooth_of_outputs=self._proxy, rows_per_chunk=self._rows_per_chunk()
        )
        return [expansion]

    # -- internals ---------------------------------------------------------------
    def _coalition_aggregator(self) -> tuple[CoalitionAggregator, bool]:
        self._affine = None
        if self._output_basis is None:
            return self._parameter_aggregator(), False
        terms, base = self._output_basis[:-1], self._output_basis[-1]
        signed = self.task == "binary" and self.metric == "neg_log_loss"
        signs = 1.0 - 2.0 * self.y if signed else None
        if signed:
            # log-loss = softplus((1 - 2y) z): flipping the signs of the scores once here
            # saves a pass per coalition, and the scores of a mixture are bounded by the
            # extremes of its parts, so exp cannot overflow when these bounds are small.
            self._bounded = float(np.max(np.abs(base * signs) + np.abs(terms * signs).max(axis=0))) < 700.0
        n_parameters = sum(a.size for a in self.global_weights.values())
        if self.n_players >= _PARAMETER_ROUTE_PLAYERS_PER_PARAMETER * n_parameters:
            self._affine = self._affine_outputs(signs)
            return self._parameter_aggregator(), signed
        if signed:
            terms, base = terms * signs, base * signs
        return CoalitionAggregator(terms, self.num_examples, base), signed

    def _parameter_aggregator(self) -> CoalitionAggregator:
        flat_updates = np.concatenate([self.updates[k].reshape(self.n_players, -1) for k in self.updates], axis=1)
        flat_global = np.concatenate([self.global_weights[k].reshape(-1) for k in self.updates])
        return CoalitionAggregator(flat_updates, self.num_examples, flat_global)

    def _affine_outputs(self, signs: np.ndarray | None) -> AffineOutputs:
        """The outputs of each unit parameter vector, less those of the zero model."""
        sizes = [self.global_weights[k].size for k in self.updates]
        total = sum(sizes)
        units = np.eye(total + 1, total)  # the last row is the zero model
        params, offset = {}, 0
        for key, size in zip(self.updates, sizes):
            params[key] = units[:, offset : offset + size].reshape((total + 1, *self.global_weights[key].shape))
            offset += size
        outputs = self.family.predict(params, self.X).reshape(total + 1, -1)
        basis, zero = outputs[:-1] - outputs[-1], outputs[-1]
        if signs is not None:
            basis, zero = basis * signs, zero * signs
        return AffineOutputs(basis, zero)

    def _metric_of_aggregates(self, combined: np.ndarray) -> np.ndarray:
        if self._affine is not None:
            combined = self._affine(combined)
        if self._signed_log_loss:
            return -signed_log_loss(combined, bounded=self._bounded)
        if self._output_basis is not None:
            outputs = combined.reshape(combined.shape[0], self.X.shape[0], self.n_outputs)
        else:
            params, offset = {}, 0
            for key, value in self.global_weights.items():
                params[key] = combined[:, offset : offset + value.size].reshape((-1, *value.shape))
                offset += value.size
            outputs = self.family.predict(params, self.X)
        return evaluate_metric(self.metric, self.task, outputs, self.y)

    def _smoothing_width(self) -> float:
        if self._width is None:
            self._width = self._output_spread()
        return self._width

    def _precompute_output_basis(self) -> np.ndarray:
        # Rows 0..n-1 hold X·Δ_i (outputs are linear in the weights), the last row the
        # global model's outputs, so a coalition's outputs are [p, 1] @ basis: one matmul.
        update_outputs = self.family.predict(self.updates, self.X)
        global_outputs = self.family.predict({k: v[None] for k, v in self.global_weights.items()}, self.X)
        basis = np.concatenate([update_outputs, global_outputs], axis=0)
        return basis.reshape(self.n_players + 1, -1)

    def _outputs(self, mixtures: np.ndarray) -> np.ndarray:
        rows = mixtures.shape[0]
        m = self.X.shape[0]
        if self._output_basis is not None:
            extended = np.concatenate([mixtures, np.ones((rows, 1))], axis=1)
            return (extended @ self._output_basis).reshape(rows, m, self.n_outputs)
        params = {
            key: self.global_weights[key][None] + np.tensordot(mixtures, stacked, axes=(1, 0))
            for key, stacked in self.updates.items()
        }
        return self.family.predict(params, self.X)

    def _rows_per_chunk(self) -> int:
        m = self.X.shape[0]
        parameter_size = sum(a.size for a in self.global_weights.values())
        hidden = self.global_weights["W1"].shape[1] if "W1" in self.global_weights else 0
        # Outputs plus metric scratch (~4 copies), hidden activations, a parameter copy.
        bytes_per_model = 8 * (4 * m * self.n_outputs + 2 * m * hidden + parameter_size + self.n_players)
        by_memory = self.memory_limit_bytes // bytes_per_model
        by_cache = _TARGET_CHUNK_ELEMENTS // (m * self.n_outputs)
        return int(max(1, min(by_memory, max(by_cache, 1))))

    def _map_chunks(self, mixtures: np.ndarray, metric_of_outputs) -> np.ndarray:
        mixtures = np.asarray(mixtures, dtype=np.float64)
        if mixtures.ndim != 2 or mixtures.shape[1] != self.n_players:
            raise ValueError(f"mixtures must have shape (k, {self.n_players}), got {mixtures.shape}")
        values = np.empty(mixtures.shape[0])
        step = self._rows_per_chunk()
        for start in range(0, mixtures.shape[0], step):
            stop = start + step
            values[start:stop] = metric_of_outputs(self._outputs(mixtures[start:stop]))
        return values

    def _output_spread(self) -> float:
        # RMS change of outputs between the grand coalition and the coalitions one
        # participant away from it (alone, or left out): how far coalition models sit
        # from each other, the natural smoothing width for step-function metrics.
        n = self.n_players
        everyone = np.ones((1, n), dtype=bool)
        singles = np.eye(n, dtype=bool)
        leave_one_out = ~singles if n > 1 else np.zeros((0, n), dtype=bool)
        mixtures = self.mixture_weights(np.concatenate([everyone, singles, leave_one_out]))
        outputs = self._outputs(mixtures)
        return float(np.sqrt(np.mean((outputs[1:] - outputs[:1]) ** 2)))


def _n_outputs(family: Any, weights: dict[str, np.ndarray], X: np.ndarray) -> int:
    return int(family.predict({k: v[None] for k, v in weights.items()}, X[:1]).shape[2])


class MultiRoundGame:
    """The sum of several rounds' games over the run's players.

    A player absent from a round is a null player there. ``estimate`` values each round
    separately (Shapley values are additive) and reports the per-round breakdown.
    """

    def __init__(self, *, rounds: Sequence[Any], players: Sequence[str] | None = None) -> None:
        if len(rounds) < 1:
            raise ValueError("a multi-round game needs at least one round")
        round_participants = []
        for index, game in enumerate(rounds):
            participants = getattr(game, "participants", None)
            if participants is None:
                participants = [str(i) for i in range(game.n_players)]
            if len(participants) != game.n_players:
                raise ValueError(f"round {index} lists {len(participants)} participants for {game.n_players} players")
            round_participants.append([str(p) for p in participants])
        if players is None:
            players = list(dict.fromkeys(p for names in round_participants for p in names))
        self.players = [str(p) for p in players]
        if len(set(self.players)) != len(self.players):
            raise ValueError("players must be unique")
        position = {name: i for i, name in enumerate(self.players)}
        self.rounds = list(rounds)
        self.round_columns = []
        for index, names in enumerate(round_participants):
            unknown = [name for name in names if name not in position]
            if unknown:
                raise ValueError(f"round {index} has participants not in players: {unknown}")
            self.round_columns.append(np.array([position[name] for name in names], dtype=np.intp))
        self.n_players = len(self.players)

    def utility(self, coalitions: np.ndarray) -> np.ndarray:
        coalitions = np.asarray(coalitions, dtype=bool)
        total = np.zeros(coalitions.shape[0])
        for game, columns in zip(self.rounds, self.round_columns):
            total += np.asarray(game.utility(coalitions[:, columns]), dtype=np.float64)
        return total
