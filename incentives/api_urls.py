"""Settlement API routes under /api/v1/: policies and pools per consortium, then by id."""

from django.urls import path

from incentives import api

urlpatterns = [
    path("consortia/<slug:slug>/policies/", api.PolicyListCreate.as_view(), name="policy-list"),
    path("consortia/<slug:slug>/revenue-pools/", api.PoolListCreate.as_view(), name="revenue-pool-list"),
    path("revenue-pools/<uuid:pool_id>/", api.PoolDetail.as_view(), name="revenue-pool-detail"),
    path("revenue-pools/<uuid:pool_id>/draft/", api.PoolDraft.as_view(), name="revenue-pool-draft"),
    path("revenue-pools/<uuid:pool_id>/approve/", api.PoolApprove.as_view(), name="revenue-pool-approve"),
    path("revenue-pools/<uuid:pool_id>/issue/", api.PoolIssue.as_view(), name="revenue-pool-issue"),
    path("revenue-pools/<uuid:pool_id>/paid/", api.PoolPaid.as_view(), name="revenue-pool-paid"),
    path("statements/", api.StatementList.as_view(), name="statement-list"),
    path("statements/<uuid:statement_id>/", api.StatementDetail.as_view(), name="statement-detail"),
]
