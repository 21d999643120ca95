from django.db import models
from django.utils.translation import gettext_lazy as _


class DosageForm(models.TextChoices):
    TABLET = "tablet", _("tablet")
    CAPSULE = "capsule", _("capsule")
    GRANULES = "granules", _("granules")
    SYRUP = "syrup", _("oral liquid")
    INJECTION = "injection", _("injection")
    INHALER = "inhaler", _("inhaler")
    OINTMENT = "ointment", _("ointment / cream")
    DROPS = "drops", _("drops")
    PATCH = "patch", _("patch")
    SUPPOSITORY = "suppository", _("suppository")
    SPRAY = "spray", _("spray")


class Route(models.TextChoices):
    ORAL = "oral", _("by mouth")
    SUBLINGUAL = "sublingual", _("under the tongue")
    INHALED = "inhaled", _("inhaled")
    TOPICAL = "topical", _("on the skin")
    OPHTHALMIC = "ophthalmic", _("in the eye")
    NASAL = "nasal", _("in the nose")
    SUBCUTANEOUS = "sc", _("subcutaneous injection")
    INTRAMUSCULAR = "im", _("intramuscular injection")
    INTRAVENOUS = "iv", _("intravenous")
    RECTAL = "rectal", _("rectal")
    TRANSDERMAL = "transdermal", _("transdermal")


class ControlClass(models.TextChoices):
    """Special-control classes. Everything but NONE is refused online (R11 / R17)."""

    NONE = "none", _("not specially controlled")
    NARCOTIC = "narcotic", _("narcotic")
    PSYCHOTROPIC_1 = "psychotropic_1", _("psychotropic, class I")
    PSYCHOTROPIC_2 = "psychotropic_2", _("psychotropic, class II")
    TOXIC = "toxic", _("medicinal toxic drug")
    RADIOACTIVE = "radioactive", _("radioactive drug")
    PRECURSOR = "precursor", _("precursor chemical")
    VACCINE = "vaccine", _("vaccine")
    BLOOD_PRODUCT = "blood_product", _("blood product")


class AntibioticTier(models.TextChoices):
    NONE = "none", _("not an antibiotic")
    UNRESTRICTED = "unrestricted", _("antibiotic, unrestricted")
    RESTRICTED = "restricted", _("antibiotic, restricted")
    SPECIAL = "special", _("antibiotic, special use")


class PaediatricUse(models.TextChoices):
    SUITABLE = "suitable", _("suitable for children")
    CAUTION = "caution", _("children: use with caution")
    NOT_SUITABLE = "not_suitable", _("not for children")


class Frequency(models.TextChoices):
    """Dosing frequencies with the number of doses a day."""

    QD = "qd", _("once a day")
    BID = "bid", _("twice a day")
    TID = "tid", _("three times a day")
    QID = "qid", _("four times a day")
    QN = "qn", _("every night")
    Q8H = "q8h", _("every 8 hours")
    Q12H = "q12h", _("every 12 hours")
    QW = "qw", _("once a week")


DOSES_PER_DAY = {
    Frequency.QD: 1,
    Frequency.BID: 2,
    Frequency.TID: 3,
    Frequency.QID: 4,
    Frequency.QN: 1,
    Frequency.Q8H: 3,
    Frequency.Q12H: 2,
    Frequency.QW: 1 / 7,
}


class InteractionSeverity(models.TextChoices):
    SERIOUS = "serious", _("serious: use only with a recorded reason")
    CONTRAINDICATED = "contraindicated", _("contraindicated: never together")


class PrescriptionStatus(models.TextChoices):
    DRAFT = "draft", _("draft")
    PENDING_REVIEW = "pending_review", _("pending pharmacist review")
    QUESTIONED = "questioned", _("sent back to the doctor")
    APPROVED = "approved", _("approved")
    REJECTED = "rejected", _("rejected")
    CANCELLED = "cancelled", _("cancelled")
    SUPERSEDED = "superseded", _("replaced by an amended version")
    DISPENSED = "dispensed", _("dispensed")


class SupplyKind(models.TextChoices):
    """How many days of supply the doctor may give (R13)."""

    NORMAL = "normal", _("normal (at most 7 days)")
    EMERGENCY = "emergency", _("emergency (at most 3 days)")
    CHRONIC = "chronic", _("chronic disease (at most 30 days, with a reason)")
    LONG = "long", _("long prescription, stable chronic patient (at most 12 weeks, with a reason)")


MAX_DAYS = {SupplyKind.NORMAL: 7, SupplyKind.EMERGENCY: 3, SupplyKind.CHRONIC: 30, SupplyKind.LONG: 84}


class ReviewDecision(models.TextChoices):
    APPROVE = "approve", _("approve")
    REJECT = "reject", _("reject")
    QUESTION = "question", _("send back to the doctor with a question")


class RejectReason(models.TextChoices):
    INDICATION = "indication", _("drug does not fit the diagnosis")
    DOSE = "dose", _("dose or frequency inappropriate")
    INTERACTION = "interaction", _("interaction or duplicate therapy")
    ALLERGY = "allergy", _("allergy or contraindication")
    QUANTITY = "quantity", _("quantity or days of supply inappropriate")
    PAEDIATRIC = "paediatric", _("unsuitable for the patient's age or weight")
    INCOMPLETE = "incomplete", _("prescription incomplete or unclear")
    OTHER = "other", _("other (see note)")
