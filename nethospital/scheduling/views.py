"""Scheduling pages: find a doctor, the doctor's page, confirm a booking, my appointments (cancel,
reschedule, calendar, waitlist offers, the no-show bar), the doctor's day, the schedule page and
notifications. Thin (CONVENTIONS): parse the form, call one action or read helper, render. A
refusal (``DomainError``) is shown on the page it came from, with its 4xx status; nothing needs
JavaScript."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.db.models import Count, F, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from nethospital.accounts.access import patients_acted_for
from nethospital.accounts.choices import Role
from nethospital.accounts.models import User
from nethospital.core import clock
from nethospital.core.errors import LOGIN_REQUIRED, MFA_REQUIRED, NOT_FOUND, PERMISSION_DENIED, DomainError
from nethospital.core.idempotency import new_key
from nethospital.core.models import Notification
from nethospital.directory.access import may_administer
from nethospital.directory.choices import OrganizationKind
from nethospital.directory.models import Organization, Practitioner
from nethospital.directory.rules import bookable_practitioners
from nethospital.scheduling import access, actions, errors, ics
from nethospital.scheduling.api import check_booking_rate, policy_for_patient
from nethospital.scheduling.choices import AppointmentStatus, Modality, SlotStatus, WaitlistStatus
from nethospital.scheduling.forms import (
    AcceptOfferForm,
    BookingForm,
    CancelForm,
    ClosureForm,
    DayForm,
    MarkForm,
    RescheduleForm,
    SearchForm,
    SessionForm,
    WaitlistForm,
    patient_choices,
)
from nethospital.scheduling.models import Closure, ScheduleSession, Slot, WaitlistEntry
from nethospital.scheduling.policy import no_show_bar, policy_for
from nethospital.scheduling.search import SearchQuery, free_slots, next_free_by_modality, search_doctors
from nethospital.scheduling.views_support import doctor_day_appointments

# A form that does not parse is refused like the actions refuse invalid input (INVALID_INPUT).
INVALID_FORM_STATUS = 422
# Action field names that a page form calls differently.
FIELD_ALIASES = {"patient_id": "patient", "slot_id": "slot", "practitioner_id": "practitioner"}
WAITLIST_DAYS_AHEAD = 14


# --- helpers ------------------------------------------------------------------------------------
def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def error_page(request: HttpRequest, exc: DomainError) -> HttpResponse:
    """The page for a refusal that belongs to no form: its message and its 4xx status. Public pages
    too, so an anonymous visitor sees "not found" rather than a login form."""
    if exc.code == LOGIN_REQUIRED.code:
        return redirect_to_login(request.get_full_path())
    status = exc.status if 400 <= exc.status < 500 else 400
    context = {"error": exc, "is_mfa_required": exc.code == MFA_REQUIRED.code}
    return render(request, "error.html", context, status=status)


def show_errors(form: Any, exc: DomainError) -> None:
    """Each of the action's field errors next to its field; anything else above the form."""
    field_errors = exc.field_errors()
    for name, texts in field_errors.items():
        target = FIELD_ALIASES.get(name, name)
        for text in texts:
            form.add_error(target if target in form.fields else None, text)
    if not field_errors:
        form.add_error(None, exc.message)


def when(moment: dt.datetime | None) -> str:
    return formats.date_format(timezone.localtime(moment), "Y-m-d H:i") if moment else ""


def slot_label(slot: Slot) -> str:
    local = timezone.localtime(slot.starts_at)
    weekday = formats.date_format(local, "l")
    return f"{local:%Y-%m-%d} {weekday} {local:%H:%M}–{timezone.localtime(slot.ends_at):%H:%M}"


def _bookable_doctor(doctor_id: int) -> Practitioner | None:
    return (
        bookable_practitioners()
        .filter(pk=doctor_id)
        .select_related("primary_institution", "department", "user")
        .prefetch_related("specialties")
        .first()
    )


def _one_line(form: Any) -> str:
    return " ".join(str(e) for errors_ in form.errors.values() for e in errors_)


# --- find a doctor ------------------------------------------------------------------------------
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """Find a doctor by symptom words, department, hospital, city, title, visit type and "a free slot
    within N days". Ordering is objective only and the page says so: no paid placement."""
    form = SearchForm(request.GET or None)
    status = 200
    hits: list[Any] = []
    if form.is_bound and not form.is_valid():
        status = INVALID_FORM_STATUS
    else:
        data = form.cleaned_data if form.is_bound else {}
        hospital = data.get("hospital")
        query = SearchQuery(
            text=data.get("text") or "",
            hospital_id=hospital.pk if hospital else None,
            department_code=data.get("department") or "",
            city=data.get("city") or "",
            title=data.get("title") or "",
            modality=data.get("modality") or "",
            free_within_days=data.get("free_within_days"),
            order=data.get("order") or "relevance",
        )
        hits = search_doctors(query, limit=50)
    return render(
        request,
        "scheduling/search.html",
        {"form": form, "hits": hits, "searched": form.is_bound},
        status=status,
    )


# --- a doctor's page ----------------------------------------------------------------------------
def _full_days(doctor: Practitioner) -> list[dt.date]:
    """Days (in the coming two weeks) whose released slots are all taken: the waitlist is for these."""
    now = clock.now()
    days = (
        Slot.objects.filter(
            practitioner=doctor,
            status=SlotStatus.OPEN,
            starts_at__gt=now,
            release_at__lte=now,
            day__lte=clock.today() + dt.timedelta(days=WAITLIST_DAYS_AHEAD),
        )
        .values("day")
        .annotate(places=Sum("capacity"), taken=Sum("booked_count"))
        .filter(taken__gte=F("places"))
        .order_by("day")
    )
    return [row["day"] for row in days]


def _doctor_context(
    request: HttpRequest, doctor: Practitioner, waitlist_form: WaitlistForm | None = None
) -> dict[str, Any]:
    upcoming = next_free_by_modality(doctor)
    fees: dict[str, list[Any]] = defaultdict(list)
    for modality, fee in (
        ScheduleSession.objects.filter(practitioner=doctor, is_active=True)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=clock.today()))
        .values_list("modality", "fee")
    ):
        fees[modality].append(fee)
    modality_labels = dict(Modality.choices)
    fee_rows = [{"modality": modality_labels.get(m, m), "low": min(v), "high": max(v)} for m, v in sorted(fees.items())]
    slot_rows = [
        {"modality": modality_labels.get(m, m), "code": m, "slots": [(s, slot_label(s)) for s in slots]}
        for m, slots in sorted(upcoming.items())
    ]
    user = _user(request)
    patients = patient_choices(patients_acted_for(user), user.pk) if user.is_authenticated else []
    return {
        "doctor": doctor,
        "hospital": doctor.primary_institution,
        "specialties": list(doctor.specialties.all()),
        "practice_years": doctor.practice_years_on(clock.today()),
        "fees": fee_rows,
        "slot_rows": slot_rows,
        "full_days": _full_days(doctor),
        "patients": patients,
        "waitlist_form": waitlist_form,
    }


@require_GET
def doctor(request: HttpRequest, doctor_id: int) -> HttpResponse:
    """Verification, hospital and tier, department, title, specialties, years of practice, fees,
    rating, and the next free slots per visit type (each a link to the booking page)."""
    found = _bookable_doctor(doctor_id)
    if found is None:
        return error_page(request, DomainError(NOT_FOUND))
    return render(request, "scheduling/doctor.html", _doctor_context(request, found))


# --- booking ------------------------------------------------------------------------------------
def _slot_notice(slot: Slot) -> str:
    """Why this slot cannot be booked now, if it cannot (the POST checks again, under locks)."""
    try:
        actions.check_slot_bookable(slot)
    except DomainError as exc:
        return exc.message
    if slot.free_places <= 0:
        return str(errors.SLOT_TAKEN.message)
    return ""


@login_required
@require_http_methods(["GET", "POST"])
def confirm_booking(request: HttpRequest, slot_id: int) -> HttpResponse:
    """Confirm: who the appointment is for (oneself or a registered family member, R30). The form
    carries an idempotency key made when the page was rendered, so a double submit books once."""
    user = _user(request)
    slot = (
        Slot.objects.select_related("practitioner__user", "practitioner__department", "hospital", "department")
        .filter(pk=slot_id)
        .first()
    )
    if slot is None:
        return error_page(request, DomainError(errors.SLOT_NOT_FOUND))
    patients = patient_choices(patients_acted_for(user), user.pk)
    if request.method == "GET":
        form = BookingForm(
            initial={"idempotency_key": new_key(), "patient": patients[0][0] if patients else None},
            patients=patients,
        )
        status = 200
    else:
        form = BookingForm(request.POST, patients=patients)
        status = INVALID_FORM_STATUS
        if form.is_valid():
            try:
                check_booking_rate(request)
                booking = actions.book_appointment(
                    user,
                    slot.pk,
                    patient_id=form.cleaned_data["patient"],
                    idempotency_key=form.cleaned_data["idempotency_key"],
                )
            except DomainError as exc:
                show_errors(form, exc)
                status = exc.status
            else:
                appointment = booking.appointment
                messages.success(
                    request,
                    _("Booked: %(doctor)s, %(when)s.")
                    % {"doctor": slot.practitioner.legal_name, "when": when(slot.starts_at)},
                )
                return redirect(f"{reverse('scheduling:my_appointments')}#appointment-{appointment.pk}")
    context = {
        "slot": slot,
        "slot_label": slot_label(slot),
        "form": form,
        "has_patients": bool(patients),
        "notice": _slot_notice(slot) if request.method == "GET" else "",
    }
    return render(request, "scheduling/confirm_booking.html", context, status=status)


# --- my appointments ----------------------------------------------------------------------------
def _appointments_context(user: User, error: str = "") -> dict[str, Any]:
    now = clock.now()
    appointments = list(
        access.appointments_visible_to(user)
        .select_related("slot", "patient", "practitioner__department", "hospital")
        .order_by("slot__starts_at", "pk")[:300]
    )
    cutoffs: dict[int, int] = {}
    upcoming, history = [], []
    for appointment in appointments:
        if appointment.is_active and appointment.slot.ends_at > now:
            if appointment.hospital_id not in cutoffs:
                cutoffs[appointment.hospital_id] = policy_for(appointment.hospital_id).cancel_cutoff_minutes
            cancel_until = appointment.slot.starts_at - dt.timedelta(minutes=cutoffs[appointment.hospital_id])
            appointment.cancel_until = cancel_until  # type: ignore[attr-defined]
            appointment.may_cancel = (  # type: ignore[attr-defined]
                appointment.status == AppointmentStatus.BOOKED and now <= cancel_until
            )
            upcoming.append(appointment)
        else:
            history.append(appointment)
    history.reverse()
    patients = patients_acted_for(user)
    waitlist = list(
        WaitlistEntry.objects.filter(patient__in=patients)
        .select_related("practitioner", "patient", "offered_slot", "hospital")
        .order_by("-joined_at", "-pk")[:100]
    )
    bars = []
    for patient in patients:
        bar = no_show_bar(patient, policy_for_patient(patient))
        if bar is not None:
            bars.append({"patient": patient, "count": bar.count, "until": bar.until})
    return {
        "upcoming": upcoming,
        "history": history,
        "waitlist": waitlist,
        "open_waitlist": [e for e in waitlist if e.status in (WaitlistStatus.WAITING, WaitlistStatus.OFFERED)],
        "bars": bars,
        "error": error,
        "new_key": new_key(),
        "has_patients": bool(patients),
    }


def _appointments_page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    return render(
        request, "scheduling/my_appointments.html", _appointments_context(_user(request), error), status=status
    )


@login_required
@require_GET
def my_appointments(request: HttpRequest) -> HttpResponse:
    """Mine and my family's (R30): upcoming and earlier, the waitlist, and the no-show bar (R29)."""
    return _appointments_page(request)


def _refused_on_appointments(request: HttpRequest, exc: DomainError) -> HttpResponse:
    if exc.status in (403, 404):
        return error_page(request, exc)
    return _appointments_page(request, error=exc.message, status=exc.status)


@login_required
@require_POST
def cancel(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """Cancel until the cut-off (R29); the place goes to the waitlist first."""
    form = CancelForm(request.POST)
    if not form.is_valid():
        return _appointments_page(request, error=_one_line(form), status=INVALID_FORM_STATUS)
    try:
        actions.cancel_appointment(_user(request), appointment_id, reason=form.cleaned_data["reason"])
    except DomainError as exc:
        return _refused_on_appointments(request, exc)
    messages.success(request, _("The appointment has been cancelled."))
    return redirect(f"{reverse('scheduling:my_appointments')}#appointment-{appointment_id}")


@login_required
@require_http_methods(["GET", "POST"])
def reschedule(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """Move a booking to another free time of the same doctor: cancel and book in one transaction."""
    user = _user(request)
    try:
        appointment = access.access_appointment(user, appointment_id, action="cancel")
    except DomainError as exc:
        return error_page(request, exc)
    candidates = list(
        free_slots()
        .filter(practitioner_id=appointment.practitioner_id)
        .exclude(pk=appointment.slot_id)
        .order_by("starts_at")[:60]
    )
    labels = {s.pk: f"{slot_label(s)} · {s.get_modality_display()} · ¥{s.fee}" for s in candidates}
    choices = list(labels.items())
    status = 200
    if request.method == "GET":
        form = RescheduleForm(initial={"idempotency_key": new_key()}, slots=choices)
    else:
        form = RescheduleForm(request.POST, slots=choices)
        status = INVALID_FORM_STATUS
        if form.is_valid():
            try:
                check_booking_rate(request)
                booking = actions.reschedule_appointment(
                    user,
                    appointment.pk,
                    form.cleaned_data["slot"],
                    idempotency_key=form.cleaned_data["idempotency_key"],
                )
            except DomainError as exc:
                if exc.status == 404 and exc.code != errors.SLOT_NOT_FOUND.code:
                    return error_page(request, exc)
                show_errors(form, exc)
                status = exc.status
            else:
                messages.success(
                    request,
                    _("Your appointment has been moved to %(when)s.")
                    % {"when": when(booking.appointment.slot.starts_at)},
                )
                return redirect(f"{reverse('scheduling:my_appointments')}#appointment-{booking.appointment.pk}")
    context = {
        "appointment": appointment,
        "current_label": slot_label(appointment.slot),
        "form": form,
        "movable": appointment.status == AppointmentStatus.BOOKED,
    }
    return render(request, "scheduling/reschedule.html", context, status=status)


@login_required
@require_GET
def calendar(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """The appointment as an iCalendar file, for the patient's side or the doctor."""
    user = _user(request)
    try:
        appointment = access.access_appointment(user, appointment_id)
    except DomainError as exc:
        return error_page(request, exc)
    for_doctor = appointment.practitioner.user_id == user.pk
    response = HttpResponse(
        ics.appointment_ics(appointment, for_doctor=for_doctor), content_type="text/calendar; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="appointment-{appointment.pk}.ics"'
    return response


# --- the waitlist -------------------------------------------------------------------------------
@login_required
@require_POST
def join_waitlist(request: HttpRequest) -> HttpResponse:
    form = WaitlistForm(request.POST)
    practitioner_id = str(form.data.get("practitioner") or "")
    found = _bookable_doctor(int(practitioner_id)) if practitioner_id.isdigit() else None
    if found is None:
        return error_page(request, DomainError(NOT_FOUND))
    status = INVALID_FORM_STATUS
    if form.is_valid():
        data = form.cleaned_data
        try:
            actions.join_waitlist(_user(request), found.pk, data["day"], patient_id=data["patient"])
        except DomainError as exc:
            show_errors(form, exc)
            status = exc.status
        else:
            messages.success(
                request,
                _("You are on the waitlist of %(doctor)s for %(day)s. We will tell you when a place is free.")
                % {"doctor": found.legal_name, "day": data["day"].isoformat()},
            )
            return redirect("scheduling:my_appointments")
    return render(request, "scheduling/doctor.html", _doctor_context(request, found, form), status=status)


@login_required
@require_POST
def accept_offer(request: HttpRequest, entry_id: int) -> HttpResponse:
    form = AcceptOfferForm(request.POST)
    if not form.is_valid():
        return _appointments_page(request, error=_one_line(form), status=INVALID_FORM_STATUS)
    try:
        booking = actions.accept_waitlist_offer(
            _user(request), entry_id, idempotency_key=form.cleaned_data["idempotency_key"]
        )
    except DomainError as exc:
        if exc.code == errors.OFFER_NOT_FOUND.code:
            return _appointments_page(request, error=exc.message, status=exc.status)
        return _refused_on_appointments(request, exc)
    messages.success(
        request, _("The offered place is yours: %(when)s.") % {"when": when(booking.appointment.slot.starts_at)}
    )
    return redirect(f"{reverse('scheduling:my_appointments')}#appointment-{booking.appointment.pk}")


@login_required
@require_POST
def leave_waitlist(request: HttpRequest, entry_id: int) -> HttpResponse:
    try:
        actions.leave_waitlist(_user(request), entry_id)
    except DomainError as exc:
        if exc.code == errors.OFFER_NOT_FOUND.code:
            return _appointments_page(request, error=exc.message, status=exc.status)
        return _refused_on_appointments(request, exc)
    messages.success(request, _("You have left the waitlist."))
    return redirect("scheduling:my_appointments")


# --- the doctor's day ---------------------------------------------------------------------------
MARK_LABELS = {
    AppointmentStatus.CHECKED_IN: gettext_lazy("Check in"),
    AppointmentStatus.NO_SHOW: gettext_lazy("No-show"),
    AppointmentStatus.COMPLETED: gettext_lazy("Completed"),
}
# The marks offered for each status (the action checks them again, with the time, R29).
MARKS_FOR_STATUS = {
    AppointmentStatus.BOOKED: [AppointmentStatus.CHECKED_IN, AppointmentStatus.NO_SHOW, AppointmentStatus.COMPLETED],
    AppointmentStatus.CHECKED_IN: [AppointmentStatus.COMPLETED],
}


def _day_page(
    request: HttpRequest, day: dt.date | None, form: DayForm, *, error: str = "", status: int = 200
) -> HttpResponse:
    """Raises DomainError when the user is not a doctor or has not passed MFA (R6)."""
    user = _user(request)
    appointments = list(doctor_day_appointments(user, day or clock.today()))
    if day is None:
        appointments = []  # the date did not parse: show the error, not another day
    for appointment in appointments:
        appointment.marks = [  # type: ignore[attr-defined]
            (s.value, MARK_LABELS[s]) for s in MARKS_FOR_STATUS.get(AppointmentStatus(appointment.status), [])
        ]
    practitioner = Practitioner.objects.filter(user=user).first()
    context = {
        "day": day,
        "form": form,
        "appointments": appointments,
        "practitioner": practitioner,
        "previous_day": (day - dt.timedelta(days=1)) if day else None,
        "next_day": (day + dt.timedelta(days=1)) if day else None,
        "today": clock.today(),
        "error": error,
    }
    return render(request, "scheduling/doctor_day.html", context, status=status)


@login_required
@require_GET
def doctor_day(request: HttpRequest) -> HttpResponse:
    """The doctor's appointments of one day, with check-in / no-show / completed (R29)."""
    form = DayForm(request.GET or None)
    status = 200
    if form.is_bound and not form.is_valid():
        day, status = None, 400
    else:
        day = (form.cleaned_data.get("day") if form.is_bound else None) or clock.today()
        if not form.is_bound:
            form = DayForm(initial={"day": day})
    try:
        return _day_page(request, day, form, status=status)
    except DomainError as exc:
        return error_page(request, exc)


@login_required
@require_POST
def mark(request: HttpRequest, appointment_id: int) -> HttpResponse:
    user = _user(request)
    form = MarkForm(request.POST)
    day_form = DayForm(request.POST)
    day = day_form.cleaned_data.get("day") if day_form.is_valid() else None
    if not form.is_valid():
        exc = DomainError(errors.BAD_MARK, field="status")
    else:
        try:
            appointment = actions.mark_appointment(user, appointment_id, form.cleaned_data["status"])
        except DomainError as caught:
            exc = caught
        else:
            label = AppointmentStatus(appointment.status).label
            messages.success(
                request,
                _("%(patient)s: %(status)s.") % {"patient": appointment.patient.legal_name, "status": label},
            )
            if appointment.practitioner.user_id == user.pk:
                return redirect(f"{reverse('scheduling:doctor_day')}?day={appointment.day.isoformat()}")
            return redirect("scheduling:schedule", doctor_id=appointment.practitioner_id)
    if exc.status in (403, 404):
        return error_page(request, exc)
    try:
        return _day_page(
            request, day or clock.today(), DayForm(initial={"day": day}), error=exc.message, status=exc.status
        )
    except DomainError:
        return error_page(request, exc)


# --- the schedule page (the doctor or an admin of the doctor's hospital) ------------------------
def _schedule_context(
    practitioner: Practitioner, session_form: SessionForm, closure_form: ClosureForm
) -> dict[str, Any]:
    now = clock.now()
    sessions = (
        ScheduleSession.objects.filter(practitioner=practitioner)
        .select_related("hospital")
        .annotate(
            upcoming_slots=Count("slots", filter=Q(slots__starts_at__gt=now, slots__status=SlotStatus.OPEN)),
            booked_places=Sum("slots__booked_count", filter=Q(slots__starts_at__gt=now)),
        )
        .order_by("-is_active", "weekday", "on_date", "start_time", "pk")
    )
    closures = Closure.objects.filter(
        Q(practitioner=practitioner) | Q(practitioner__isnull=True, hospital_id=practitioner.primary_institution_id)
    ).order_by("-first_day", "-pk")[:50]
    return {
        "practitioner": practitioner,
        "sessions": sessions,
        "closures": closures,
        "session_form": session_form,
        "closure_form": closure_form,
    }


def _session_hospitals(practitioner: Practitioner) -> list[tuple[int, str]]:
    """The doctor's hospital and the internet hospitals attached to it (online visits run there)."""
    hospital = practitioner.primary_institution
    attached = Organization.objects.filter(attached_to=hospital, kind=OrganizationKind.INTERNET_HOSPITAL)
    return [(hospital.pk, str(hospital)), *[(o.pk, str(o)) for o in attached.order_by("pk")]]


def _with_hospital_field(form: SessionForm, practitioner: Practitioner) -> SessionForm:
    form.fields["hospital"] = forms.TypedChoiceField(
        label=_("Hospital"), coerce=int, choices=_session_hospitals(practitioner)
    )
    form.order_fields(["hospital"])
    return form


@login_required
@require_http_methods(["GET", "POST"])
def schedule(request: HttpRequest, doctor_id: int) -> HttpResponse:
    """Sessions (recurring or one-off) and closures of one doctor; add one of each."""
    user = _user(request)
    practitioner = (
        Practitioner.objects.select_related("primary_institution", "department", "user").filter(pk=doctor_id).first()
    )
    if practitioner is None:
        return error_page(request, DomainError(NOT_FOUND))
    if not access.may_manage_schedule(user, practitioner):
        is_staff_of_doctor = practitioner.user_id == user.pk or (
            user.has_role(Role.HOSPITAL_ADMIN) and may_administer(user, practitioner.primary_institution_id)
        )
        needs_mfa = is_staff_of_doctor and not user.is_mfa_verified
        return error_page(request, DomainError(MFA_REQUIRED if needs_mfa else PERMISSION_DENIED))
    session_form = _with_hospital_field(SessionForm(prefix="session"), practitioner)
    closure_form = ClosureForm(prefix="closure")
    status = 200
    if request.method == "POST":
        which = request.POST.get("form")
        if which == "session":
            session_form = _with_hospital_field(SessionForm(request.POST, prefix="session"), practitioner)
            status = INVALID_FORM_STATUS
            if session_form.is_valid():
                data = dict(session_form.cleaned_data)
                try:
                    session = actions.create_session(user, practitioner.pk, hospital_id=data.pop("hospital"), **data)
                except DomainError as exc:
                    show_errors(session_form, exc)
                    status = exc.status
                else:
                    messages.success(
                        request,
                        _("Session added: %(slots)s slots created.") % {"slots": session.slots.count()},
                    )
                    return redirect("scheduling:schedule", doctor_id=practitioner.pk)
        elif which == "closure":
            closure_form = ClosureForm(request.POST, prefix="closure")
            status = INVALID_FORM_STATUS
            if closure_form.is_valid():
                data = closure_form.cleaned_data
                try:
                    outcome = actions.close_days(
                        user,
                        hospital_id=practitioner.primary_institution_id,
                        practitioner_id=practitioner.pk,
                        first_day=data["first_day"],
                        last_day=data["last_day"],
                        reason=data["reason"],
                    )
                except DomainError as exc:
                    show_errors(closure_form, exc)
                    status = exc.status
                else:
                    closure = outcome.closure
                    messages.success(
                        request,
                        _("Closed from %(first)s to %(last)s; %(count)s bookings cancelled and the patients told.")
                        % {
                            "first": closure.first_day,
                            "last": closure.last_day,
                            "count": outcome.cancelled_appointments,
                        },
                    )
                    return redirect("scheduling:schedule", doctor_id=practitioner.pk)
        else:
            status = 400
    return render(
        request,
        "scheduling/schedule.html",
        _schedule_context(practitioner, session_form, closure_form),
        status=status,
    )


# --- notifications ------------------------------------------------------------------------------
@login_required
@require_http_methods(["GET", "POST"])
def notifications(request: HttpRequest) -> HttpResponse:
    """The user's in-app notifications; mark one or all read."""
    user = _user(request)
    if request.method == "POST":
        target = request.POST.get("notification", "")
        try:
            if target == "all":
                actions.mark_all_notifications_read(user)
            elif target.isdigit() and len(target) <= 18:
                actions.mark_notification_read(user, int(target))
            else:
                raise DomainError(NOT_FOUND)
        except DomainError as exc:
            return error_page(request, exc)
        return redirect("scheduling:notifications")
    items = list(Notification.objects.filter(user=user)[:100])
    return render(
        request,
        "scheduling/notifications.html",
        {"items": items, "unread": sum(1 for n in items if n.read_at is None)},
    )
