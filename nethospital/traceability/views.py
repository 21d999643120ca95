"""Traceability pages: public code verification, alerts for regulators and pharmacies, recalls,
and a box's journey for the patient who received it. Thin: access and writes are in ``access``,
``anomalies``, ``recalls``, ``journey`` and ``verify``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from nethospital.accounts.models import User
from nethospital.accounts.views import INVALID_FORM_STATUS, render_domain_error
from nethospital.core import ratelimit
from nethospital.core.errors import RATE_LIMITED, DomainError
from nethospital.core.middleware import client_address
from nethospital.directory.models import Organization
from nethospital.traceability import access, anomalies, recalls
from nethospital.traceability.choices import AlertKind, Severity
from nethospital.traceability.journey import STEP_LABELS, journey_for, place_names
from nethospital.traceability.models import Recall
from nethospital.traceability.state import cbv_word
from nethospital.traceability.verify import verify_code

REASON_TEXTS = {
    "invalidCode": gettext_lazy("This is not a code we can read. Check that you typed or scanned all of it."),
    "unknownProduct": gettext_lazy(
        "This product is not in the drug catalogue: the code is not mapped to any medicine."
    ),
    "unknownCode": gettext_lazy(
        "The product is known, but no box with this code was ever registered by its maker. It may be a fake."
    ),
    "batchMismatch": gettext_lazy("The batch printed on the box does not match the batch this code was made with."),
    "expiryMismatch": gettext_lazy("The expiry printed on the box does not match the one this code was made with."),
    "alreadyDispensed": gettext_lazy(
        "This code has been dispensed more than once. A code sold twice means a fake, resold or substituted box."
    ),
    "decommissioned": gettext_lazy("This code was withdrawn or the box destroyed: it should not be in use."),
    "recalled": gettext_lazy("This batch has been recalled. Do not use it; contact your pharmacy."),
    "expired": gettext_lazy("This box is past its expiry date. Do not use it."),
}


def _wants_json(request: HttpRequest) -> bool:
    if request.GET.get("format") == "json":
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


# --- Public verification ------------------------------------------------------------------------


@require_GET
def verify(request: HttpRequest, code: str = "") -> HttpResponse:
    """``/verify/<code>`` (page, or JSON with ``?format=json``) and ``/verify/?code=...`` (the form)."""
    code = (code or request.GET.get("code", "")).strip()
    as_json = _wants_json(request)
    if not code:
        if as_json:
            return JsonResponse(
                {"error": {"code": "code_required", "message": _("Give a code to verify.")}}, status=400
            )
        return render(request, "traceability/verify.html", {"code": "", "result": None})
    retry_after = ratelimit.hit(
        "verify-address",
        client_address(request) or "unknown",
        limit=int(settings.NETHOSPITAL_VERIFY_RATE_PER_ADDRESS),
        window_seconds=60,
    )
    if retry_after is not None:
        error = DomainError(RATE_LIMITED, retry_after=retry_after)
        if as_json:
            response: HttpResponse = JsonResponse(error.as_dict(), status=429)
        else:
            response = render(
                request, "traceability/verify.html", {"code": code, "rate_error": error.message}, status=429
            )
        response["Retry-After"] = str(retry_after)
        return response
    result = verify_code(code)
    if as_json:
        response = JsonResponse(result.as_json(), json_dumps_params={"ensure_ascii": False})
        response["Cache-Control"] = "no-store"
        return response
    context = {
        "code": code,
        "result": result,
        "reason_text": REASON_TEXTS.get(result.failure_reason or "", ""),
        "json_url": reverse("traceability:verify") + "?" + urlencode({"code": code, "format": "json"}),
    }
    return render(request, "traceability/verify.html", context)


# --- Alerts -------------------------------------------------------------------------------------


class AlertFilterForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), required=False, choices=[("", "—"), *AlertKind.choices])
    severity = forms.ChoiceField(label=gettext_lazy("Severity"), required=False, choices=[("", "—"), *Severity.choices])
    state = forms.ChoiceField(
        label=gettext_lazy("State"),
        required=False,
        choices=[
            ("open", gettext_lazy("not acknowledged")),
            ("acknowledged", gettext_lazy("acknowledged")),
            ("all", gettext_lazy("all")),
        ],
    )
    organization = forms.ModelChoiceField(
        label=gettext_lazy("Organisation"), required=False, queryset=Organization.objects.none()
    )
    code = forms.CharField(label=gettext_lazy("Code"), required=False, max_length=300)

    def __init__(self, *args: Any, organizations: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if organizations is None:
            del self.fields["organization"]
        else:
            self.fields["organization"].queryset = organizations  # type: ignore[attr-defined]


def _evidence_rows(alert: Any, names: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for ref in alert.evidence.get("events", []) if isinstance(alert.evidence, dict) else []:
        word = cbv_word(ref.get("bizStep", ""))
        rows.append(
            {
                "event_id": ref.get("eventID", ""),
                "time": ref.get("eventTime", ""),
                "what": STEP_LABELS.get(word, word),
                "place": names.get(ref.get("bizLocation", ""), ""),
            }
        )
    return rows


@login_required
@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    """Regulators see every alert; pharmacies see their own. Filters by kind, severity, state, code."""
    user: User = request.user  # type: ignore[assignment]
    try:
        queryset = access.alerts_for(user)
    except DomainError as exc:
        return render_domain_error(request, exc)
    regulator = access.may_see_all_alerts(user)
    organizations = Organization.objects.filter(traceability_alerts__isnull=False).distinct() if regulator else None
    form = AlertFilterForm(request.GET or {"state": "open"}, organizations=organizations)
    if form.is_valid():
        data = form.cleaned_data
        if data.get("kind"):
            queryset = queryset.filter(kind=data["kind"])
        if data.get("severity"):
            queryset = queryset.filter(severity=data["severity"])
        state = data.get("state") or "open"
        if state == "open":
            queryset = queryset.filter(acknowledged_at__isnull=True)
        elif state == "acknowledged":
            queryset = queryset.filter(acknowledged_at__isnull=False)
        if data.get("organization"):
            queryset = queryset.filter(organization=data["organization"])
        if data.get("code"):
            queryset = queryset.filter(identifier__icontains=data["code"].strip())
    page = Paginator(queryset.order_by("-raised_at", "-pk"), 50).get_page(request.GET.get("page"))
    uris = {
        ref.get("bizLocation", "")
        for alert in page
        if isinstance(alert.evidence, dict)
        for ref in alert.evidence.get("events", [])
    }
    names = place_names(uris)
    rows = [{"alert": alert, "evidence": _evidence_rows(alert, names)} for alert in page]
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "rows": rows,
        "page": page,
        "query": query.urlencode(),
        "is_regulator": regulator,
        "open_count": access.alerts_for(user).filter(acknowledged_at__isnull=True).count(),
    }
    return render(request, "traceability/alerts.html", context)


@login_required
@require_POST
def acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    try:
        alert = anomalies.acknowledge_alert(request.user, alert_id)  # type: ignore[arg-type]
    except DomainError as exc:
        return render_domain_error(request, exc)
    messages.success(
        request,
        _("Alert acknowledged: %(kind)s, %(code)s.") % {"kind": alert.get_kind_display(), "code": alert.identifier},
    )
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("traceability:alerts")
    return redirect(target)


# --- Recalls ------------------------------------------------------------------------------------


class RecallForm(forms.Form):
    gtin = forms.CharField(label=gettext_lazy("GTIN"), max_length=14)
    batch = forms.CharField(label=gettext_lazy("Batch (lot)"), max_length=20)
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=300, widget=forms.Textarea(attrs={"rows": 3}))


@login_required
@require_http_methods(["GET", "POST"])
def recall_list(request: HttpRequest) -> HttpResponse:
    """The recalls; regulators (with a second factor) recall a batch here."""
    user: User = request.user  # type: ignore[assignment]
    if not access.may_see_recalls(user):
        return render_domain_error(request, DomainError(access.NOT_SUPERVISOR))
    regulator = access.is_regulator(user)
    form = RecallForm(request.POST or None) if regulator else None
    status = 200
    if request.method == "POST":
        if form is None:
            return render_domain_error(request, DomainError(access.NOT_REGULATOR))
        if form.is_valid():
            try:
                recall = recalls.recall_batch(user, **form.cleaned_data)
            except DomainError as exc:
                if exc.status in (401, 403):
                    return render_domain_error(request, exc)
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(
                    request,
                    _("Batch %(batch)s of %(gtin)s is recalled.") % {"batch": recall.batch, "gtin": recall.gtin},
                )
                return redirect("traceability:recalls")
        status = INVALID_FORM_STATUS
    recall_rows = Recall.objects.select_related("recalled_by").order_by("-recalled_at")[:200]
    context = {"form": form, "recalls": recall_rows, "is_regulator": regulator}
    return render(request, "traceability/recalls.html", context, status=status)


# --- Journey ------------------------------------------------------------------------------------


@login_required
@require_GET
def journey(request: HttpRequest, identifier: str) -> HttpResponse:
    try:
        result = journey_for(request.user, identifier)  # type: ignore[arg-type]
    except DomainError as exc:
        return render_domain_error(request, exc)
    verification = verify_code(result.pack.identifier)
    return render(request, "traceability/journey.html", {"journey": result, "verification": verification})
