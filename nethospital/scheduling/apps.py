from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "nethospital.scheduling"
    label = "scheduling"
    verbose_name = "Scheduling"
