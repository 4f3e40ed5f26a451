"""Django application configuration for ``demo`` (no models; it provides ``seed_demo``)."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"
