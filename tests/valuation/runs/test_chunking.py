"""How a valuation run is cut into chunks: budgets honoured, coalitions covered once,
seeds independent of everything but (run seed, round, chunk), no dependence on workers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from valuation.chunking import ENUMERATE, ESTIMATE, aligned_blocks, chunk_seed, plan_chunks, split_budget
from valuation.services.valuation_runs import minimum_budget


def _plan(method="stratified", budget=None, tolerance=None, sizes=((0, 10), (1, 10)), chunk_budget=500, seed=7):
    return plan_chunks(method=method, budget=budget, tolerance=tolerance, seed=seed, round_sizes=list(sizes),
                       chunk_budget=chunk_budget, minimum=minimum_budget)


def test_exact_cuts_every_round_into_key_ranges_that_cover_each_coalition_once():
    chunks = _plan(method="exact", sizes=[(0, 11), (3, 5)], chunk_budget=300)
    for t, n in [(0, 11), (3, 5)]:
        ranges = sorted((c.first_key, c.last_key) for c in chunks if c.round == t)
        assert ranges[0][0] == 0 and ranges[-1][1] == 2**n
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
        assert all(0 < last - first <= 300 for first, last in ranges)
    assert {c.kind for c in chunks} == {ENUMERATE}


def test_a_sampling_budget_is_spent_exactly_and_each_chunk_gets_at_least_the_method_minimum():
    chunks = _plan(budget=5_003, sizes=[(0, 20), (1, 30), (2, 8)], chunk_budget=700)
    assert sum(c.evaluations for c in chunks) == 5_003
    for c in chunks:
        if c.kind == ESTIMATE:
            n = {0: 20, 1: 30, 2: 8}[c.round]
            assert c.budget >= minimum_budget("stratified", n)
            assert c.budget <= 700
    # Round 2 (256 coalitions) is capped and enumerated instead of sampled.
    assert {c.kind for c in chunks if c.round == 2} == {ENUMERATE}


def test_the_chunks_depend_on_the_request_and_chunk_budget_only():
    first = _plan(budget=4_000, seed=3)
    assert first == _plan(budget=4_000, seed=3)
    assert [c.seed for c in first] != [c.seed for c in _plan(budget=4_000, seed=4)]
    assert len({c.seed for c in first}) == len(first)


def test_chunk_seeds_are_independent_of_the_order_they_are_asked_for():
    forward = [chunk_seed(9, t, i) for t in range(3) for i in range(4)]
    backward = [chunk_seed(9, t, i) for t in reversed(range(3)) for i in reversed(range(4))]
    assert forward == list(reversed(backward))
    assert all(0 <= seed < 2**63 for seed in forward)


def test_loo_and_tolerance_requests_run_one_estimate_per_round():
    for chunks in (_plan(method="loo"), _plan(method="stratified", tolerance=0.01)):
        assert [(c.round, c.index, c.kind, c.budget) for c in chunks] == [(0, 0, ESTIMATE, None), (1, 0, ESTIMATE, None)]


def test_auto_without_budget_enumerates_small_rounds():
    assert {c.kind for c in _plan(method="auto", sizes=[(0, 9)])} == {ENUMERATE}


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=6),
    extra=st.integers(min_value=0, max_value=200_000),
    chunk_budget=st.integers(min_value=50, max_value=30_000),
    method=st.sampled_from(["stratified", "permutation", "kernel", "taylor", "auto", "banzhaf", "tmc"]),
)
def test_any_budget_at_or_above_the_minimum_is_honoured(sizes, extra, chunk_budget, method):
    rounds = list(enumerate(sizes))
    least = sum(minimum_budget(method, n) for n in sizes)
    chunks = _plan(method=method, budget=least + extra, sizes=rounds, chunk_budget=chunk_budget)
    assert sum(c.evaluations for c in chunks) <= least + extra
    for t, n in rounds:
        own = [c for c in chunks if c.round == t]
        assert own, f"round {t} got no chunk"
        if own[0].kind == ENUMERATE:
            assert sum(c.evaluations for c in own) == 2**n
        else:
            assert all(c.budget >= minimum_budget(method, n) for c in own)
    # Everything the rounds can hold is used before any budget is left over.
    if sum(c.evaluations for c in chunks) < least + extra:
        assert all(c.kind == ENUMERATE for c in chunks)


@given(budget=st.integers(min_value=0, max_value=10**6),
       caps=st.lists(st.integers(min_value=1, max_value=10**5), min_size=1, max_size=8))
def test_split_budget_gives_each_round_its_minimum_and_never_exceeds_a_cap(budget, caps):
    minimums = [min(2, cap) for cap in caps]
    budget = max(budget, sum(minimums))
    shares = split_budget(budget, minimums, caps)
    assert all(m <= s <= c for m, s, c in zip(minimums, shares, caps))
    assert sum(shares) == min(budget, sum(caps))
    # Evenly: the rounds below their cap got the same extra, give or take one coalition.
    extras = [s - m for s, m, c in zip(shares, minimums, caps) if s < c]
    assert not extras or max(extras) - min(extras) <= 1


@given(first=st.integers(0, 5000), length=st.integers(0, 5000), max_bits=st.integers(0, 14))
def test_aligned_blocks_cover_a_key_range_once_each_block_aligned_to_its_length(first, length, max_bits):
    blocks = list(aligned_blocks(first, first + length, max_bits))
    keys = [key for start, bits in blocks for key in range(start, start + 2**bits)]
    assert keys == list(range(first, first + length))
    assert all(start % 2**bits == 0 and bits <= max_bits for start, bits in blocks)


def test_an_aligned_range_is_one_block_per_largest_allowed_power_of_two():
    assert list(aligned_blocks(4096, 8192, 12)) == [(4096, 12)]
    assert list(aligned_blocks(0, 8192, 11)) == [(0, 11), (2048, 11), (4096, 11), (6144, 11)]
    assert list(aligned_blocks(3, 9, 3)) == [(3, 0), (4, 2), (8, 0)]
