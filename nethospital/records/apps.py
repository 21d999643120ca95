from django.apps import AppConfig


class RecordsConfig(AppConfig):
    name = "nethospital.records"
    label = "records"
    verbose_name = "Records"
