"""The sections of a consortium's overview page, contributed by the apps above this one.

The overview shows what every app knows of the consortium (revenue pools, valuation runs,
the ledger's latest checkpoint, a participant's own figures), but the tenancy app sits
below all of them and imports none (tests/test_architecture.py). So each app registers a
*section provider* here with :func:`overview_section`, and ``consortium_page`` renders the
sections registered. Each app imports its provider module in ``AppConfig.ready()``, so
every section is registered before any page is served (as the admin's registry works).

A provider is called as ``provider(principal=..., consortium=...)`` and returns None (the
caller sees nothing of it) or an :class:`OverviewSection`. Each reads in a fixed number of
queries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from consortium.access import Principal
from consortium.models import Consortium


@dataclass(frozen=True)
class OverviewSection:
    template: str  # rendered with ``section`` (this object), ``consortium`` and the page's context
    data: dict = field(default_factory=dict)


_PROVIDERS: dict[str, tuple[int, Callable]] = {}


def overview_section(order: int) -> Callable:
    """Register the decorated provider; sections are shown by ``order``, smallest first."""

    def register(provider: Callable) -> Callable:
        _PROVIDERS[f"{provider.__module__}.{provider.__qualname__}"] = (order, provider)
        return provider

    return register


def overview_sections(*, principal: Principal, consortium: Consortium) -> list[OverviewSection]:
    sections = []
    for _, provider in sorted(_PROVIDERS.values(), key=lambda item: item[0]):
        section = provider(principal=principal, consortium=consortium)
        if section is not None:
            sections.append(section)
    return sections
