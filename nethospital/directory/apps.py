from django.apps import AppConfig


class DirectoryConfig(AppConfig):
    name = "nethospital.directory"
    label = "directory"
    verbose_name = "Directory"
