from django.utils.translation import gettext_lazy as _

from nethospital.core.errors import ErrorCode

CONSULTATION_NOT_FOUND = ErrorCode("consultation_not_found", _("This consultation does not exist."), 404)
NOT_A_PARTICIPANT = ErrorCode("not_a_participant", _("You are not taking part in this consultation."), 403)
CONSULTATION_CLOSED = ErrorCode("consultation_closed", _("This consultation has ended."), 409)
CONSULTATION_NOT_ACTIVE = ErrorCode("consultation_not_active", _("This consultation has not started yet."), 409)
WRONG_STATE = ErrorCode("consultation_wrong_state", _("This cannot be done at this stage of the consultation."), 409)
APPOINTMENT_NOT_REMOTE = ErrorCode(
    "appointment_not_remote", _("Only a video or text appointment becomes an online consultation."), 409
)
APPOINTMENT_NOT_ACTIVE = ErrorCode("appointment_not_active", _("This appointment is cancelled or over."), 409)
ALREADY_OPENED = ErrorCode("consultation_exists", _("A consultation is already open for this."), 409)
CONDITION_REQUIRED = ErrorCode("condition_required", _("Please describe the condition you want to be seen for."))
PROOF_REQUIRED = ErrorCode(
    "proof_required",
    _(
        "For a follow-up visit, attach proof of the earlier diagnosis: a visit record here, a record of "
        "another hospital, or a document."
    ),
)
PROOF_RECORD_INVALID = ErrorCode("proof_record_invalid", _("This visit record is not one of the patient's."))
PROOF_DOCUMENT_INVALID = ErrorCode("proof_document_invalid", _("This document is not one of the patient's files."))
PROOF_HOSPITAL_REQUIRED = ErrorCode("proof_hospital_required", _("Name the hospital and write the diagnosis it made."))
FOLLOW_UP_NEEDS_PROOF = ErrorCode(
    "follow_up_needs_proof",
    _("A first visit or a visit without proof of an earlier diagnosis can only be advice (no diagnosis online)."),
    409,
)
GUARDIAN_REQUIRED = ErrorCode(
    "guardian_required", _("A child under 6 is seen online only with a guardian present."), 409
)
NOT_PAEDIATRIC = ErrorCode(
    "not_paediatric", _("A child under 6 must be seen by a paediatric doctor or one of the matching specialty."), 409
)
NOT_IN_DEPARTMENT = ErrorCode("not_in_department", _("You do not work in this department."), 403)
QUEUE_EMPTY = ErrorCode("queue_empty", _("Nobody is waiting in this queue that you can see."), 409)
ALREADY_QUEUED = ErrorCode("already_queued", _("This patient is already waiting in a queue."), 409)
ACCEPT_EXPIRED = ErrorCode("accept_expired", _("The time to accept this request has passed."), 409)
MESSAGE_EMPTY = ErrorCode("message_empty", _("The message is empty."))
MESSAGE_TOO_LONG = ErrorCode("message_too_long", _("A message may have at most %(limit)s characters."))
CLIENT_ID_INVALID = ErrorCode("client_id_invalid", _("The message id must be 1 to 64 printable characters."))
FOLLOWUP_OVER = ErrorCode(
    "followup_over", _("The free follow-up period of this consultation is over; please start a new one."), 409
)
FILE_TOO_LARGE = ErrorCode("file_too_large", _("The file is larger than %(limit)s MB."), 413)
FILE_TYPE_FORBIDDEN = ErrorCode(
    "file_type_forbidden", _("Only images (JPEG, PNG, WebP) and PDF documents can be sent; this file is not one."), 415
)
FILE_EMPTY = ErrorCode("file_empty", _("The file is empty."))
RECORD_REQUIRED = ErrorCode(
    "record_required", _("Write and sign the visit record before completing the consultation."), 409
)
RECORD_ALREADY_SIGNED = ErrorCode(
    "record_already_signed",
    _("The visit record is already signed; a change is a correction with a reason."),
    409,
)
DIAGNOSIS_NOT_ALLOWED = ErrorCode(
    "diagnosis_not_allowed",
    _("This is an advice-only consultation (first visit or no proof): no diagnosis can be recorded online (R1)."),
    409,
)
DIAGNOSIS_REQUIRED = ErrorCode("diagnosis_required", _("A follow-up visit record needs at least one diagnosis."))
UNKNOWN_ICD10 = ErrorCode("unknown_icd10", _("Unknown diagnosis code: %(code)s."))
CORRECTION_REASON_REQUIRED = ErrorCode("correction_reason_required", _("Say why the record is corrected."))
RECORD_NOT_CURRENT = ErrorCode("record_not_current", _("Only the current version of a record can be corrected."), 409)
REASON_REQUIRED = ErrorCode("reason_required", _("Please give a reason."))
REVIEW_EXISTS = ErrorCode("review_exists", _("This consultation has already been reviewed."), 409)
REVIEW_NOT_ALLOWED = ErrorCode("review_not_allowed", _("Only a completed consultation can be reviewed."), 409)
RATING_INVALID = ErrorCode("rating_invalid", _("The rating must be a whole number from 1 to 5."))
CALL_NOT_FOUND = ErrorCode("call_not_found", _("This call does not exist."), 404)
CALL_NEEDS_VIDEO = ErrorCode("call_needs_video", _("Video calls are for video consultations."), 409)
