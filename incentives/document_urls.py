"""Statement documents: downloads under /api/v1/."""

urlpatterns: list = []
