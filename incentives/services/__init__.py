"""Settlement services: every write of the incentives app, one user action per function.

``policy_change`` (policies.py); ``pool_create``, ``pool_update``, ``pool_statements_draft``,
``pool_approve`` (pools.py); ``pool_issue``, ``pool_mark_paid`` (issuing.py); ``dispute_file``,
``dispute_review``, ``dispute_revaluation_order``, ``dispute_decide`` (disputes.py).
Refusals are ``core.errors`` service errors.
"""

from incentives.services.disputes import dispute_decide, dispute_file, dispute_revaluation_order, dispute_review
from incentives.services.issuing import pool_issue, pool_mark_paid
from incentives.services.policies import policy_change, policy_current
from incentives.services.pools import pool_approve, pool_create, pool_statements_draft, pool_update

__all__ = [
    "dispute_decide",
    "dispute_file",
    "dispute_revaluation_order",
    "dispute_review",
    "policy_change",
    "policy_current",
    "pool_approve",
    "pool_create",
    "pool_issue",
    "pool_mark_paid",
    "pool_statements_draft",
    "pool_update",
]
