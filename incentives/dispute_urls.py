"""Disputes under /api/v1/."""

urlpatterns: list = []
