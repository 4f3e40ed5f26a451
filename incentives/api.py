"""The settlement API: allocation policies, revenue pools (open, change, draft, approve,
issue, mark paid) and statements. Views check access and shapes; the services do the rest."""

from __future__ import annotations

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from consortium.access import Capability, consortium_get, principal_for, require
from core.errors import InvalidInput, NotAllowed, NotFound
from core.idempotency import IdempotentWrite, body_digest
from core.parsers import JSONParser
from incentives import serializers as s
from incentives.access import pool_get, statement_get, statements_visible
from incentives.models import AllocationPolicy, RevenuePool
from incentives.services import (
    policy_change,
    pool_approve,
    pool_create,
    pool_issue,
    pool_mark_paid,
    pool_statements_draft,
    pool_update,
)
from valuation.api import IDEMPOTENCY_PARAMETER


def pool_body(pool: RevenuePool) -> dict:
    return s.PoolOutput(pool).data


def _policy_version(consortium, version: int | None) -> AllocationPolicy | None:
    if version is None:
        return None
    policy = consortium.allocation_policies.filter(version=version).first()
    if policy is None:
        raise InvalidInput(f"The consortium has no policy version {version}.", field="policy_version")
    return policy


class PolicyListCreate(ListAPIView):
    serializer_class = s.PolicyOutput
    parser_classes = [JSONParser]

    def get_queryset(self):
        principal = principal_for(self.request)
        consortium = consortium_get(principal, self.kwargs["slug"])
        require(principal, consortium, Capability.VIEW)
        return consortium.allocation_policies.order_by("-version")

    @extend_schema(request=s.PolicyInput, responses={201: s.PolicyOutput}, parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request, slug):
        principal = principal_for(request)
        consortium = consortium_get(principal, slug)
        require(principal, consortium, Capability.SET_POLICY)
        data = s.PolicyInput(data=request.data)
        data.is_valid(raise_exception=True)
        terms = dict(data.validated_data)
        note = terms.pop("note", "")
        digest = body_digest(json.dumps(request.data, sort_keys=True, default=str))
        return IdempotentWrite(request, scope=consortium, body_digest=digest).run(
            lambda: (policy_change(actor=principal, consortium=consortium, note=note, **terms), True),
            lambda policy: s.PolicyOutput(policy).data,
        )


class PoolListCreate(ListAPIView):
    serializer_class = s.PoolOutput
    parser_classes = [JSONParser]

    def get_queryset(self):
        principal = principal_for(self.request)
        consortium = consortium_get(principal, self.kwargs["slug"])
        require(principal, consortium, Capability.VIEW_POOLS)
        pools = consortium.revenue_pools.select_related("consortium", "policy", "drafted_by").order_by("-created_at")
        if "status" in self.request.query_params:
            wanted = self.request.query_params["status"]
            if wanted not in RevenuePool.Status.values:
                raise InvalidInput(f"status must be one of {', '.join(RevenuePool.Status.values)}.", field="status")
            pools = pools.filter(status=wanted)
        return pools.prefetch_related("approvals__user")

    @extend_schema(parameters=[OpenApiParameter("status", str)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=s.PoolInput, responses={201: s.PoolOutput}, parameters=[IDEMPOTENCY_PARAMETER])
    def post(self, request, slug):
        principal = principal_for(request)
        consortium = consortium_get(principal, slug)
        require(principal, consortium, Capability.MANAGE_POOLS)
        data = s.PoolInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        policy = _policy_version(consortium, fields.pop("policy_version", None))
        digest = body_digest(json.dumps(data.validated_data, sort_keys=True, default=str))
        return IdempotentWrite(request, scope=consortium, body_digest=digest).run(
            lambda: (pool_create(actor=principal, consortium=consortium, policy=policy, **fields), True),
            pool_body,
        )


class PoolDetail(APIView):
    parser_classes = [JSONParser]

    @extend_schema(responses=s.PoolOutput)
    def get(self, request, pool_id):
        return Response(pool_body(pool_get(principal_for(request), pool_id)))

    @extend_schema(request=s.PoolChange, responses=s.PoolOutput)
    def patch(self, request, pool_id):
        principal = principal_for(request)
        pool = pool_get(principal, pool_id, Capability.MANAGE_POOLS)
        data = s.PoolChange(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if "policy_version" in changes:
            changes["policy"] = _policy_version(pool.consortium, changes.pop("policy_version"))
        return Response(pool_body(pool_update(actor=principal, pool=pool, **changes)))


def _pool_action(service):
    """A POST on a pool that calls ``service(actor=..., pool=...)`` and answers the pool."""

    class PoolAction(APIView):
        parser_classes = [JSONParser]

        @extend_schema(request=None, responses=s.PoolOutput)
        def post(self, request, pool_id):
            principal = principal_for(request)
            pool = pool_get(principal, pool_id, Capability.MANAGE_POOLS)
            return Response(pool_body(service(actor=principal, pool=pool)))

    PoolAction.__name__ = PoolAction.__qualname__ = f"Pool{service.__name__.split('_')[-1].title()}"
    return PoolAction


PoolDraft = _pool_action(pool_statements_draft)
PoolApprove = _pool_action(pool_approve)
PoolIssue = _pool_action(pool_issue)


class PoolPaid(APIView):
    parser_classes = [JSONParser]

    @extend_schema(request=s.PaymentInput, responses=s.PoolOutput)
    def post(self, request, pool_id):
        principal = principal_for(request)
        pool = pool_get(principal, pool_id, Capability.MANAGE_POOLS)
        data = s.PaymentInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(pool_body(pool_mark_paid(actor=principal, pool=pool, **data.validated_data)))


class StatementList(ListAPIView):
    """Statements the caller may read; ``?pool=<id>`` narrows to one pool."""

    serializer_class = s.StatementOutput

    def get_queryset(self):
        principal = principal_for(self.request)
        if not any(principal.can(c, Capability.VIEW_STATEMENTS) for c in principal.consortia()):
            raise NotAllowed("Your role or key scope does not allow reading statements (scope read).")
        statements = statements_visible(principal)
        if "pool" in self.request.query_params:
            try:
                pool = pool_get(principal, self.request.query_params["pool"], Capability.VIEW_STATEMENTS)
            except NotFound:
                raise InvalidInput(f"No revenue pool {self.request.query_params['pool']!r} that you may see.",
                                   field="pool") from None
            statements = statements.filter(pool=pool)
        return statements.order_by("pool__created_at", "participant__slug", "version")

    @extend_schema(parameters=[OpenApiParameter("pool", OpenApiTypes.UUID)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class StatementDetail(APIView):
    @extend_schema(responses=s.StatementOutput)
    def get(self, request, statement_id):
        return Response(s.StatementOutput(statement_get(principal_for(request), statement_id)).data)
