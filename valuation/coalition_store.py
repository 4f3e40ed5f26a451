"""The engine's coalition cache, kept in the database per valuation run and round.

Workers that value the same round share what they compute, and a task that is delivered
again after its worker was lost finds the utilities that worker had already stored
instead of computing them again. Values are stored as float8 / REAL and come back as the
very float that was stored, as the engine's cache protocol requires.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from valuation.models import CoalitionUtility

# Keys per query: well under SQLite's and PostgreSQL's limits on bound parameters.
_BATCH = 2000


class DatabaseCoalitionCache:
    """``get_many`` / ``put_many`` over :class:`CoalitionUtility` rows of one run and round.

    Writes are committed as they are made (the caller is not in a transaction): a worker
    killed later keeps them.
    """

    def __init__(self, *, valuation_run_id, round: int) -> None:
        self.valuation_run_id, self.round = valuation_run_id, round

    def get_many(self, keys: Iterable[int]) -> dict[int, float]:
        wanted = {format(int(key), "x"): int(key) for key in keys}
        found: dict[int, float] = {}
        names = list(wanted)
        for start in range(0, len(names), _BATCH):
            rows = CoalitionUtility.objects.filter(
                valuation_run_id=self.valuation_run_id, round=self.round, coalition__in=names[start : start + _BATCH]
            ).values_list("coalition", "utility")
            found.update((wanted[name], float(utility)) for name, utility in rows)
        return found

    def put_many(self, values: Mapping[int, float]) -> None:
        rows = [
            CoalitionUtility(
                valuation_run_id=self.valuation_run_id, round=self.round, coalition=format(int(key), "x"),
                utility=float(utility),
            )
            for key, utility in values.items()
        ]
        # A concurrent worker may have stored the same coalition: its value is the same.
        CoalitionUtility.objects.bulk_create(rows, batch_size=_BATCH, ignore_conflicts=True)

    def stored_count(self) -> int:
        return CoalitionUtility.objects.filter(valuation_run_id=self.valuation_run_id, round=self.round).count()
