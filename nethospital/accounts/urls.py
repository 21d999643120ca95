from django.urls import path

from nethospital.accounts import views

app_name = "accounts"
urlpatterns = [
    # Routed before allauth's include (nethospital/urls.py): our real-name form replaces allauth's sign-up.
    path("accounts/signup/", views.signup, name="signup"),
    path("me/", views.profile, name="profile"),
    path("me/family/", views.family, name="family"),
    path("me/family/<int:link_id>/end/", views.end_family_link, name="end_family_link"),
    path("language/", views.set_language, name="set_language"),
]
