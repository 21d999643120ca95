from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "nethospital.core"
    label = "core"
    verbose_name = "Core"
