from django.utils.translation import gettext_lazy as _

from nethospital.core.errors import ErrorCode

NOT_VERIFIED = ErrorCode("practitioner_not_verified", _("This doctor's licence has not been verified yet."), 403)
SUSPENDED = ErrorCode("practitioner_suspended", _("This doctor is suspended and cannot see patients."), 403)
TOO_LITTLE_PRACTICE = ErrorCode(
    "practitioner_too_little_practice",
    _("Online practice needs at least %(years)s years of independent practice."),
    403,
)
NO_INSTITUTION_CONSENT = ErrorCode(
    "practitioner_no_institution_consent",
    _("The doctor's registered institution has not consented to online practice."),
    403,
)
NOT_A_PRACTITIONER = ErrorCode("not_a_practitioner", _("You are not registered as a practitioner."), 403)
BAD_TRANSITION = ErrorCode("verification_bad_transition", _("This change of verification status is not allowed."), 409)
REASON_REQUIRED = ErrorCode("reason_required", _("Give a reason."))
INTERNET_HOSPITAL_NEEDS_PHYSICAL = ErrorCode(
    "internet_hospital_needs_physical",
    _("An internet hospital must be attached to a licensed physical hospital."),
)
LICENCE_REQUIRED = ErrorCode("licence_required", _("A licence number is required."))
LICENCE_TAKEN = ErrorCode("licence_taken", _("This licence number is already registered."), 409)
