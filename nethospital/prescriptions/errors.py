from django.utils.translation import gettext_lazy as _

from nethospital.core.errors import ErrorCode

PRESCRIPTION_NOT_FOUND = ErrorCode("prescription_not_found", _("This prescription does not exist."), 404)
NOT_TREATING_DOCTOR = ErrorCode(
    "not_treating_doctor", _("Only the doctor who treated this patient in this consultation may prescribe (R8)."), 403
)
ADVICE_ONLY = ErrorCode(
    "advice_only_no_prescription",
    _("This consultation is advice only (first visit or no proof of an earlier diagnosis): no prescription (R1)."),
    409,
)
NO_DIAGNOSIS = ErrorCode(
    "no_diagnosis", _("Sign the visit record with a diagnosis before writing a prescription."), 409
)
CONSULTATION_STATE = ErrorCode(
    "consultation_not_prescribable", _("A prescription is written during or after a consultation in progress."), 409
)
NOT_DRAFT = ErrorCode("prescription_not_draft", _("A signed prescription cannot be changed; amend it instead."), 409)
NO_ITEMS = ErrorCode("prescription_empty", _("Add at least one drug."))
UNKNOWN_DRUG = ErrorCode("unknown_drug", _("Unknown drug: %(drug)s."))
DOSE_NOT_POSITIVE = ErrorCode("dose_not_positive", _("The dose must be more than zero."))
DAYS_NOT_POSITIVE = ErrorCode("days_not_positive", _("Days of supply must be at least 1."))
DAYS_TOO_MANY = ErrorCode("days_too_many", _("Days of supply cannot be more than %(limit)s."))
DOSE_TOO_LARGE = ErrorCode("dose_too_large", _("The dose must be less than %(limit)s."))
QUANTITY_INVALID = ErrorCode("quantity_invalid", _("The quantity must be a whole number of packs, at least 1."))
VALID_DAYS_INVALID = ErrorCode(
    "valid_days_invalid", _("A prescription is valid on its day of issue, extendable to at most 3 days (R13).")
)
WEIGHT_INVALID = ErrorCode("weight_invalid", _("Enter the weight in kilograms (0.5 to 300)."))
TOO_MANY_ITEMS = ErrorCode("too_many_items", _("A prescription has at most %(limit)s drugs."))
BLOCKED_BY_RULES = ErrorCode("prescription_blocked", _("The prescription cannot be signed: %(reasons)s"), 409)
NOT_OVERRIDABLE = ErrorCode("rule_not_overridable", _("This is a refusal; it cannot be overridden."), 409)
NO_SUCH_WARNING = ErrorCode("no_such_warning", _("There is no such warning on this prescription."))
OVERRIDE_REASON_REQUIRED = ErrorCode("override_reason_required", _("Give the reason for going on despite the warning."))
NOT_PENDING_REVIEW = ErrorCode("not_pending_review", _("This prescription is not waiting for review."), 409)
EXPIRED = ErrorCode("prescription_expired", _("This prescription has expired."), 409)
OWN_PRESCRIPTION = ErrorCode("own_prescription", _("Nobody may review their own prescription."), 403)
NOT_A_REVIEWER = ErrorCode(
    "not_a_reviewer", _("Only a pharmacist of the prescribing internet hospital reviews its prescriptions."), 403
)
REJECT_REASON_REQUIRED = ErrorCode("reject_reason_required", _("Choose at least one reason for the rejection."))
QUESTION_REQUIRED = ErrorCode("question_required", _("Write the question for the doctor."))
SIGNATURE_INVALID = ErrorCode(
    "signature_invalid", _("The prescription does not match its signature: it was changed after signing."), 409
)
NOT_AMENDABLE = ErrorCode("not_amendable", _("Only a prescription sent back or pending review can be amended."), 409)
ALREADY_DISPENSED = ErrorCode("already_dispensed", _("This prescription has already been used (R15)."), 409)
NOT_APPROVED = ErrorCode(
    "not_approved", _("No drug leaves the pharmacy before a pharmacist approves the prescription (R9)."), 409
)
STATISTICS_FORBIDDEN = ErrorCode(
    "statistics_forbidden", _("Prescribing statistics per doctor are for the regulator only (R12)."), 403
)
