from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "nethospital.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from nethospital.accounts import signals  # noqa: F401  (connects the MFA session markers)
