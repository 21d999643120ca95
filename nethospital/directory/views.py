"""Directory pages: the hospital admin's verification queue (R5). Thin: the queue comes from
``directory.access``, every change from ``directory.actions.change_verification``."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from nethospital.accounts.models import User
from nethospital.accounts.views import INVALID_FORM_STATUS, render_domain_error
from nethospital.core import clock
from nethospital.core.errors import MFA_REQUIRED, NOT_FOUND, PERMISSION_DENIED, DomainError
from nethospital.directory import access, actions
from nethospital.directory.choices import VerificationStatus
from nethospital.directory.forms import QueueFilterForm, VerificationChangeForm
from nethospital.directory.models import Organization, Practitioner, VerificationEvent

# What each allowed change (directory.actions.TRANSITIONS) is called on its button.
ACTION_LABELS = {
    (VerificationStatus.PENDING, VerificationStatus.VERIFIED): gettext_lazy("Verify"),
    (VerificationStatus.PENDING, VerificationStatus.REJECTED): gettext_lazy("Reject"),
    (VerificationStatus.VERIFIED, VerificationStatus.SUSPENDED): gettext_lazy("Suspend"),
    (VerificationStatus.SUSPENDED, VerificationStatus.VERIFIED): gettext_lazy("Reinstate"),
    (VerificationStatus.REJECTED, VerificationStatus.PENDING): gettext_lazy("Reopen"),
}
# Refusals about the admin (not about the practitioner) get the error page, not a row message.
PAGE_ERRORS = {MFA_REQUIRED.code, NOT_FOUND.code, PERMISSION_DENIED.code}


def _with_history(queryset: QuerySet[Practitioner]) -> QuerySet[Practitioner]:
    events = VerificationEvent.objects.select_related("actor").order_by("-occurred_at", "-pk")
    return queryset.prefetch_related(Prefetch("verification_events", queryset=events, to_attr="history"))


def _row(practitioner: Practitioner, *, error: str = "", reason: str = "") -> dict[str, Any]:
    status = practitioner.verification_status
    return {
        "practitioner": practitioner,
        "practice_years": practitioner.practice_years_on(clock.today()),
        "actions": [
            {"to_status": to, "label": label, "needs_reason": actions.TRANSITIONS[(status, to)]}
            for (origin, to), label in ACTION_LABELS.items()
            if origin == status and (origin, to) in actions.TRANSITIONS
        ],
        "error": error,
        "reason": reason,
    }


def _queue_page(
    request: HttpRequest, queryset: QuerySet[Practitioner], *, failed: dict[int, dict[str, str]] | None = None
) -> dict[str, Any]:
    failed = failed or {}
    form = QueueFilterForm(request.GET or None)
    status = form.cleaned_data["status"] if form.is_valid() else ""
    shown = queryset.filter(verification_status=status) if status else queryset
    rows = [_row(p, **failed.get(p.pk, {})) for p in _with_history(shown.order_by("verification_status", "pk"))]
    return {
        "filter_form": form,
        "status": status,
        "rows": rows,
        "pending_count": queryset.filter(verification_status=VerificationStatus.PENDING).count(),
    }


@login_required
@require_GET
def verification_queue(request: HttpRequest) -> HttpResponse:
    """Practitioners of the admin's hospitals, filterable by status, with their history (R5)."""
    try:
        queryset = access.verification_queue(request.user)  # type: ignore[arg-type]
    except DomainError as exc:
        return render_domain_error(request, exc)
    return render(request, "directory/verification_queue.html", _queue_page(request, queryset))


@login_required
@require_POST
def change_verification(request: HttpRequest, practitioner_id: int) -> HttpResponse:
    """Verify, reject, suspend or reinstate one practitioner. With htmx only the row is returned."""
    form = VerificationChangeForm(request.POST)
    reason = request.POST.get("reason", "")[:300]
    try:
        if not form.is_valid():
            # The status is not one we know: refuse it as the action refuses a bad change.
            queryset = access.verification_queue(request.user)  # type: ignore[arg-type]
            practitioner = queryset.filter(pk=practitioner_id).first()
            if practitioner is None:
                raise DomainError(NOT_FOUND)
            message = _("Choose a valid change.")
            return _refused_row(request, queryset, practitioner, message, reason, INVALID_FORM_STATUS)
        practitioner = actions.change_verification(
            request.user,  # type: ignore[arg-type]
            practitioner_id,
            form.cleaned_data["to_status"],
            reason=form.cleaned_data["reason"],
        )
    except DomainError as exc:
        if exc.code in PAGE_ERRORS:
            return render_domain_error(request, exc)
        queryset = access.verification_queue(request.user)  # type: ignore[arg-type]
        practitioner = queryset.get(pk=practitioner_id)
        return _refused_row(request, queryset, practitioner, exc.message, reason, exc.status)
    message = _("%(name)s: %(status)s.") % {
        "name": practitioner.legal_name,
        "status": practitioner.get_verification_status_display(),
    }
    if request.htmx:  # type: ignore[attr-defined]
        row = _row(_with_history(Practitioner.objects.filter(pk=practitioner.pk)).get(), error="")
        return render(request, "directory/_practitioner_row.html", {"row": row, "done": message})
    messages.success(request, message)
    return redirect(reverse("directory:verification_queue") + f"#practitioner-{practitioner.pk}")


def _refused_row(
    request: HttpRequest,
    queryset: QuerySet[Practitioner],
    practitioner: Practitioner,
    error: str,
    reason: str,
    status: int,
) -> HttpResponse:
    if request.htmx:  # type: ignore[attr-defined]
        row = _row(_with_history(Practitioner.objects.filter(pk=practitioner.pk)).get(), error=error, reason=reason)
        return render(request, "directory/_practitioner_row.html", {"row": row}, status=status)
    context = _queue_page(request, queryset, failed={practitioner.pk: {"error": error, "reason": reason}})
    return render(request, "directory/verification_queue.html", context, status=status)


# --- Sections of the home page ------------------------------------------------------------------


def admin_home_context(user: User) -> dict[str, Any]:
    """The hospital admin's starting point: how many practitioners wait for verification."""
    try:
        queryset = access.verification_queue(user)
    except DomainError as exc:
        return {"is_admin": True, "admin_queue_error": exc.message}
    return {
        "is_admin": True,
        "admin_pending_count": queryset.filter(verification_status=VerificationStatus.PENDING).count(),
        "admin_organisations": Organization.objects.filter(pk__in=access.administered_organisation_ids(user)),
    }


def organisations_context(user: User) -> dict[str, Any]:
    return {"organisations": Organization.objects.filter(pk__in=user.organisation_ids()).order_by("pk")}
