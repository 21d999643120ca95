from django.utils.translation import gettext_lazy as _

from nethospital.core.errors import ErrorCode

ID_NUMBER_LENGTH = ErrorCode("id_number_length", _("The identity number must have 18 characters."))
ID_NUMBER_CHARACTERS = ErrorCode(
    "id_number_characters", _("The identity number must be 17 digits followed by a digit or X.")
)
ID_NUMBER_REGION = ErrorCode("id_number_region", _("The identity number does not start with a valid region code."))
ID_NUMBER_BIRTH_DATE = ErrorCode("id_number_birth_date", _("The birth date in the identity number is impossible."))
ID_NUMBER_CHECK = ErrorCode(
    "id_number_check", _("The check character of the identity number is wrong; please check for a typing error.")
)
ID_NUMBER_TAKEN = ErrorCode(
    "id_number_taken", _("This identity number is already registered. One person can have only one account."), 409
)
BIRTH_DATE_MISMATCH = ErrorCode(
    "birth_date_mismatch", _("The birth date does not match the one in the identity number.")
)
SEX_MISMATCH = ErrorCode("sex_mismatch", _("The sex does not match the one in the identity number."))
LEGAL_NAME_INVALID = ErrorCode(
    "legal_name_invalid", _("Enter the legal name as on the identity card (2 to 50 letters).")
)
PHONE_INVALID = ErrorCode("phone_invalid", _("Enter a mainland China mobile number of 11 digits starting with 1."))
EMAIL_TAKEN = ErrorCode("email_taken", _("An account with this e-mail address already exists."), 409)
EMAIL_INVALID = ErrorCode("email_invalid", _("Enter a valid e-mail address."))
PASSWORD_WEAK = ErrorCode("password_weak", _("The password is too weak."))
FIELD_REQUIRED = ErrorCode("required", _("This field is required."))
FIELD_TOO_LONG = ErrorCode("too_long", _("This value is too long."))
CHOICE_INVALID = ErrorCode("invalid_choice", _("This is not one of the allowed choices."))
ALREADY_PATIENT = ErrorCode("already_patient", _("This account already has a real-name identity."), 409)
NOT_A_PATIENT = ErrorCode("not_a_patient", _("Register your own real-name identity first."), 403)
FAMILY_SELF = ErrorCode("family_self", _("You cannot add yourself as a family member."))
YOUNG_CHILD_NEEDS_GUARDIAN = ErrorCode(
    "young_child_needs_guardian",
    _("A child under 6 must be registered by a parent, grandparent or legal guardian."),
)
LAST_GUARDIAN = ErrorCode(
    "last_guardian", _("You are the only guardian of this child under 6; the link cannot be removed."), 409
)
UNKNOWN_ROLE = ErrorCode("unknown_role", _("Unknown role."))
ROLE_NEEDS_ORGANISATION = ErrorCode("role_needs_organisation", _("This role must be given for an organisation."))
ROLE_TAKES_NO_ORGANISATION = ErrorCode("role_takes_no_organisation", _("This role is not given for an organisation."))
ROLE_ALREADY_GRANTED = ErrorCode("role_already_granted", _("This person already has this role here."), 409)
LANGUAGE_INVALID = ErrorCode("language_invalid", _("Unsupported language."))
