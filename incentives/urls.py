"""Settlement pages (sign-in sessions): revenue pools, statements, disputes."""

from django.urls import path

from incentives import dispute_views, pool_views, views

urlpatterns = [
    path("c/<slug:slug>/pools/", pool_views.pools_page, name="pools-page"),
    path("c/<slug:slug>/pools/<uuid:pool_id>/", pool_views.pool_page, name="pool-page"),
    path("c/<slug:slug>/pools/<uuid:pool_id>/<str:action>", pool_views.pool_action_page, name="pool-action-page"),
    path("c/<slug:slug>/statements/", views.statements_page, name="statements-page"),
    path("c/<slug:slug>/statements/<uuid:statement_id>/", views.statement_page, name="statement-page"),
    path("c/<slug:slug>/statements/<uuid:statement_id>/dispute", dispute_views.dispute_file_page,
         name="dispute-file-page"),
    path("c/<slug:slug>/disputes/", dispute_views.disputes_page, name="disputes-page"),
    path("c/<slug:slug>/disputes/<uuid:dispute_id>/", dispute_views.dispute_page, name="dispute-page"),
    path("c/<slug:slug>/disputes/<uuid:dispute_id>/<str:action>", dispute_views.dispute_action_page,
         name="dispute-action-page"),
]
