from django.utils.translation import gettext_lazy as _

from nethospital.core.errors import ErrorCode

SLOT_NOT_FOUND = ErrorCode("slot_not_found", _("This slot does not exist."), 404)
SLOT_TAKEN = ErrorCode("slot_taken", _("This slot has just been taken. Please choose another time."), 409)
SLOT_NOT_RELEASED = ErrorCode(
    "slot_not_released", _("This slot is not open for booking yet; it opens at %(release_at)s."), 409
)
SLOT_IN_PAST = ErrorCode("slot_in_past", _("This slot has already started."), 409)
SLOT_CLOSED = ErrorCode("slot_closed", _("This session has been closed by the hospital."), 409)
DOCTOR_NOT_BOOKABLE = ErrorCode("doctor_not_bookable", _("This doctor cannot be booked at the moment."), 409)
NOT_FAMILY = ErrorCode(
    "not_family", _("You can book only for yourself or a family member registered on your account."), 403
)
SAME_DOCTOR_SAME_DAY = ErrorCode(
    "same_doctor_same_day", _("This patient already has a booking with this doctor on that day."), 409
)
TOO_MANY_ACTIVE = ErrorCode(
    "too_many_active_bookings", _("This patient already has %(limit)s active bookings, the most allowed."), 409
)
BARRED_FOR_NO_SHOWS = ErrorCode(
    "barred_for_no_shows",
    _("Because of %(count)s missed appointments, booking is suspended until %(until)s."),
    409,
)
IDEMPOTENCY_KEY_REUSED = ErrorCode(
    "idempotency_key_reused", _("This request key was already used for a different booking."), 409
)
IDEMPOTENCY_KEY_INVALID = ErrorCode(
    "idempotency_key_invalid", _("The Idempotency-Key header must be 8 to 64 characters.")
)
APPOINTMENT_NOT_FOUND = ErrorCode("appointment_not_found", _("This appointment does not exist."), 404)
NOT_CANCELLABLE = ErrorCode("not_cancellable", _("This appointment can no longer be cancelled."), 409)
CANCEL_CUTOFF_PASSED = ErrorCode(
    "cancel_cutoff_passed", _("Cancellation closed %(minutes)s minutes before the appointment."), 409
)
RESCHEDULE_OTHER_DOCTOR = ErrorCode(
    "reschedule_other_doctor", _("A booking can only be moved to another time of the same doctor."), 409
)
NOT_YOUR_PATIENT = ErrorCode("not_your_appointment", _("This appointment is not with you."), 403)
BAD_MARK = ErrorCode("bad_mark", _("This appointment cannot be marked so now."), 409)
ALREADY_WAITING = ErrorCode("already_waiting", _("This patient is already on the waitlist for that day."), 409)
OFFER_EXPIRED = ErrorCode("offer_expired", _("The offered slot was not accepted in time."), 409)
OFFER_NOT_FOUND = ErrorCode("offer_not_found", _("There is no open offer."), 404)
SESSION_INVALID = ErrorCode("session_invalid", _("The session times are not valid."))
RATE_LIMITED = ErrorCode("rate_limited", _("Too many booking attempts. Try again in %(retry_after)s seconds."), 429)
DATE_RANGE_INVALID = ErrorCode("date_range_invalid", _("The date range is not valid."))
