"""iCalendar (RFC 5545) files for an appointment, for the patient's and the doctor's calendars."""

from __future__ import annotations

import datetime as dt

from nethospital.scheduling.models import Appointment


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def appointment_ics(appointment: Appointment, *, for_doctor: bool = False) -> str:
    slot = appointment.slot
    hospital = appointment.hospital
    if for_doctor:
        summary = f"{appointment.patient.legal_name} · {slot.get_modality_display()}"
    else:
        summary = f"{appointment.practitioner.legal_name} · {hospital.name_zh} · {slot.get_modality_display()}"
    status = "CONFIRMED" if appointment.is_active else "CANCELLED"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Net Hospital//Appointments//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:appointment-{appointment.pk}@nethospital",
        f"DTSTAMP:{_utc(appointment.booked_at)}",
        f"DTSTART:{_utc(slot.starts_at)}",
        f"DTEND:{_utc(slot.ends_at)}",
        f"SUMMARY:{_escape(summary)}",
        f"LOCATION:{_escape(hospital.address or hospital.name_zh)}",
        f"STATUS:{status}",
        "BEGIN:VALARM",
        "TRIGGER:-PT1H",
        "ACTION:DISPLAY",
        f"DESCRIPTION:{_escape(summary)}",
        "END:VALARM",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"
