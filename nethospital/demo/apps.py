from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data for a laptop or a showcase: ``nethospital demo`` seeds it through the real actions."""

    name = "nethospital.demo"
    label = "demo"
    verbose_name = "Demo data"
