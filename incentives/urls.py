"""Settlement pages (sign-in sessions)."""

urlpatterns: list = []
