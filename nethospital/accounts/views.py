"""Account pages: real-name sign-up, my profile, my family, language. Thin: parse, call one
action or access function, render. Refusals (``DomainError``) become form errors or an error page
with the refusal's 4xx status."""

from __future__ import annotations

import contextlib
from typing import Any

from allauth.mfa.utils import is_mfa_enabled
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django.views.i18n import set_language as django_set_language

from nethospital.accounts import actions, policy
from nethospital.accounts.choices import Role
from nethospital.accounts.forms import FamilyMemberForm, LanguageForm, OwnIdentityForm, SignUpForm, show_domain_error
from nethospital.accounts.models import FamilyLink, Patient, User
from nethospital.core.errors import LOGIN_REQUIRED, MFA_REQUIRED, DomainError

LOGIN_BACKEND = "allauth.account.auth_backends.AuthenticationBackend"
# A form that does not parse is refused like the actions refuse invalid input (INVALID_INPUT).
INVALID_FORM_STATUS = 422


def render_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    """The page for a refusal that is not a form error: its message and its 4xx status.
    ``login_required`` sends the visitor to the login page; ``mfa_required`` links to MFA set-up."""
    if exc.code == LOGIN_REQUIRED.code or not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    status = exc.status if 400 <= exc.status < 500 else 400
    context = {"error": exc, "is_mfa_required": exc.code == MFA_REQUIRED.code}
    return render(request, "error.html", context, status=status)


def form_status(form: Any) -> int:
    return 200 if not form.is_bound or form.is_valid() else INVALID_FORM_STATUS


# --- Sign-up ------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Real-name patient sign-up (R30: one identity, one account)."""
    if request.user.is_authenticated:
        return redirect("records:home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = actions.sign_up_patient(
                email=data["email"],
                password=data["password"],
                legal_name=data["legal_name"],
                id_number=data["id_number"],
                birth_date=data["birth_date"],
                sex=data["sex"],
                phone=data["phone"],
                language=get_language() or "",
            )
        except DomainError as exc:
            show_domain_error(form, exc)
            return render(request, "accounts/signup.html", {"form": form}, status=exc.status)
        login(request, user, backend=LOGIN_BACKEND)
        messages.success(request, _("Welcome! Your account has been created."))
        return redirect("records:home")
    return render(request, "accounts/signup.html", {"form": form}, status=form_status(form))


# --- Profile ------------------------------------------------------------------------------------


def _profile_context(user: User, identity_form: OwnIdentityForm | None = None) -> dict[str, Any]:
    patient = Patient.objects.filter(account=user).first()
    return {
        "patient": patient,
        "roles": sorted(Role(grant.role).label for grant in user.active_grants()),
        "grants": user.active_grants(),
        "mfa_enabled": is_mfa_enabled(user),
        "requires_mfa": policy.requires_mfa(user),
        "identity_form": identity_form if identity_form is not None else (None if patient else OwnIdentityForm()),
    }


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    """My account. Staff without a real-name identity may register their own here."""
    user: User = request.user  # type: ignore[assignment]
    if request.method == "GET":
        return render(request, "accounts/profile.html", _profile_context(user))
    form = OwnIdentityForm(request.POST)
    if not form.is_valid():
        return render(request, "accounts/profile.html", _profile_context(user, form), status=INVALID_FORM_STATUS)
    data = form.cleaned_data
    try:
        actions.register_own_identity(
            user,
            legal_name=data["legal_name"],
            id_number=data["id_number"],
            birth_date=data["birth_date"],
            sex=data["sex"],
            phone=data["phone"],
        )
    except DomainError as exc:
        show_domain_error(form, exc)
        return render(request, "accounts/profile.html", _profile_context(user, form), status=exc.status)
    messages.success(request, _("Your real-name identity has been registered."))
    return redirect("accounts:profile")


# --- Family -------------------------------------------------------------------------------------


def _family_context(user: User, form: FamilyMemberForm | None = None, error: str = "") -> dict[str, Any]:
    links = (
        FamilyLink.objects.filter(holder=user, ended_at__isnull=True)
        .select_related("patient")
        .order_by("patient__birth_date", "pk")
    )
    return {
        "links": links,
        "form": form or FamilyMemberForm(),
        "is_patient": Patient.objects.filter(account=user).exists(),
        "error": error,
    }


@login_required
@require_http_methods(["GET", "POST"])
def family(request: HttpRequest) -> HttpResponse:
    """My family members (R30): the people I may book and act for; add one."""
    user: User = request.user  # type: ignore[assignment]
    if request.method == "GET":
        return render(request, "accounts/family.html", _family_context(user))
    form = FamilyMemberForm(request.POST)
    if not form.is_valid():
        return render(request, "accounts/family.html", _family_context(user, form), status=INVALID_FORM_STATUS)
    data = form.cleaned_data
    try:
        link = actions.add_family_member(
            user,
            legal_name=data["legal_name"],
            id_number=data["id_number"],
            birth_date=data["birth_date"],
            sex=data["sex"],
            relationship=data["relationship"],
            phone=data["phone"],
        )
    except DomainError as exc:
        show_domain_error(form, exc)
        return render(request, "accounts/family.html", _family_context(user, form), status=exc.status)
    messages.success(request, _("%(name)s has been added to your family.") % {"name": link.patient.legal_name})
    return redirect("accounts:family")


@login_required
@require_POST
def end_family_link(request: HttpRequest, link_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    try:
        link = actions.end_family_link(user, link_id)
    except DomainError as exc:
        if exc.status == 403:
            # Not one of my links: do not confirm that it exists.
            return render_domain_error(request, exc)
        return render(request, "accounts/family.html", _family_context(user, error=exc.message), status=exc.status)
    messages.success(request, _("The link with %(name)s has been ended.") % {"name": link.patient.legal_name})
    return redirect("accounts:family")


# --- Language -----------------------------------------------------------------------------------


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Switch language: saved on the account when logged in, then Django's ``set_language``
    sets the cookie and redirects back."""
    form = LanguageForm(request.POST)
    if form.is_valid() and request.user.is_authenticated:
        # The form already restricts the choice; Django's view below ignores an unknown one too.
        with contextlib.suppress(DomainError):
            actions.set_preferred_language(request.user, form.cleaned_data["language"])  # type: ignore[arg-type]
    return django_set_language(request)
