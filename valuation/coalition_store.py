"""The engine's coalition cache, kept in the database per valuation run and round.

Sampling chunks (every method but exact enumeration) value their round through it:
workers that value the same round share what they compute, and a task that is delivered
again after its worker was lost finds the utilities that worker had already stored
instead of computing them again. Values are stored as float8 / REAL and come back as the
very float that was stored, as the engine's cache protocol requires. (Enumerated rounds
store whole batches instead, as :class:`~valuation.models.UtilityBlock` rows.)

A coalition's key is its bitmask in hexadecimal, zero-padded to the round's width
(⌈n/4⌉ digits): one spelling per coalition, and text order is numeric order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.db import connection

from valuation.models import CoalitionUtility

# Keys per query: well under SQLite's and PostgreSQL's limits on bound parameters.
_BATCH = 2000


class DatabaseCoalitionCache:
    """``get_many`` / ``put_many`` over :class:`CoalitionUtility` rows of one run and round.

    Writes are committed as they are made (the caller is not in a transaction): a worker
    killed later keeps them.
    """

    def __init__(self, *, valuation_run_id, round: int, n_players: int) -> None:
        self.valuation_run_id, self.round = valuation_run_id, round
        self.width = max(1, -(-n_players // 4))

    def _name(self, key: int) -> str:
        return format(int(key), f"0{self.width}x")

    def _rows(self):
        return CoalitionUtility.objects.filter(valuation_run_id=self.valuation_run_id, round=self.round)

    def get_many(self, keys: Iterable[int]) -> dict[int, float]:
        wanted = {self._name(key): int(key) for key in keys}
        found: dict[int, float] = {}
        names = list(wanted)
        if connection.vendor == "postgresql":
            rows = self._get_any(names)
            return {wanted[name]: float(utility) for name, utility in rows}
        for start in range(0, len(names), _BATCH):
            rows = self._rows().filter(coalition__in=names[start : start + _BATCH])
            found.update((wanted[name], float(utility)) for name, utility in rows.values_list("coalition", "utility"))
        return found

    def _get_any(self, names: list[str]) -> list[tuple[str, float]]:
        """One ``= ANY(array)`` query: a third of the ORM's IN-list cost per key on
        PostgreSQL (measured: 2 µs against 7.7 µs), and no limit on bound parameters."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT coalition, utility FROM {CoalitionUtility._meta.db_table} "
                "WHERE valuation_run_id = %s AND round = %s AND coalition = ANY(%s::text[])",
                [self.valuation_run_id, self.round, names],
            )
            return cursor.fetchall()

    def put_many(self, values: Mapping[int, float]) -> None:
        # A concurrent worker may have stored the same coalition: its value is the same.
        if connection.vendor == "postgresql":
            self._put_unnested(values)
            return
        rows = [
            CoalitionUtility(
                valuation_run_id=self.valuation_run_id, round=self.round, coalition=self._name(key),
                utility=float(utility),
            )
            for key, utility in values.items()
        ]
        CoalitionUtility.objects.bulk_create(rows, batch_size=_BATCH, ignore_conflicts=True)

    def _put_unnested(self, values: Mapping[int, float]) -> None:
        """One INSERT … SELECT unnest(arrays) per call: on PostgreSQL about ten times
        faster than multi-row VALUES (measured: 65,536 rows in 4.3 s that way)."""
        table = CoalitionUtility._meta.db_table
        names = [self._name(key) for key in values]
        utilities = [float(utility) for utility in values.values()]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (valuation_run_id, round, coalition, utility) "
                "SELECT %s, %s, unnest(%s::text[]), unnest(%s::float8[]) "
                "ON CONFLICT (valuation_run_id, round, coalition) DO NOTHING",
                [self.valuation_run_id, self.round, names, utilities],
            )

    def stored_count(self) -> int:
        return self._rows().count()
