"""Seed the demo through the real actions, idempotently.

Every object is looked up by its natural key first (an organisation by kind and Chinese name, a
user by e-mail, a family member by holder and name) and only created, through its action, when it
is missing; so a second run changes nothing and writes no audit entry. Administrators act as
trusted set-up steps (``is_mfa_verified = True`` on the object, as if they had passed their second
factor), which is how the actions' own checks (R5, R6, R24) still run on every row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import transaction
from django.test.utils import override_settings

from nethospital.accounts import actions as account_actions
from nethospital.accounts.choices import Role
from nethospital.accounts.models import FamilyLink, Patient, RoleGrant, User
from nethospital.consultations.demo import seed_consultations
from nethospital.core import clock
from nethospital.core.models import AuditEntry
from nethospital.demo import data
from nethospital.directory import actions as directory_actions
from nethospital.directory.choices import Profession, VerificationStatus
from nethospital.directory.models import Department, Organization, Practitioner, Specialty
from nethospital.pharmacy.demo import seed_pharmacy
from nethospital.records import access as records_access
from nethospital.records import actions as records_actions
from nethospital.scheduling.demo import seed_schedules
from nethospital.testing.totp import enable_totp


class DemoPasswordHasher(PBKDF2PasswordHasher):
    """PBKDF2-SHA256 with few iterations, for seeding ~90 demo accounts in seconds instead of half a
    minute. The hashes carry their iteration count, so Django's standard PBKDF2 hasher verifies them
    and re-hashes each at full strength on its first successful login. Demo only (the password is
    published anyway); the demo command refuses to run in production."""

    iterations = 1000


@dataclass
class SeedResult:
    created: dict[str, int] = field(default_factory=dict)

    def count(self, what: str) -> None:
        self.created[what] = self.created.get(what, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.created.values())


class Seeder:
    def __init__(self) -> None:
        self.result = SeedResult()
        self.orgs: dict[str, Organization] = {}
        self.departments: dict[tuple[str, str], Department] = {}
        self.users: dict[str, User] = {}

    # --- people who act in the set-up ---------------------------------------------------------

    def trusted(self, user: User) -> User:
        user.is_mfa_verified = True  # a trusted script: as if this person had passed their second factor
        user.forget_cached_roles()
        return user

    @property
    def platform_admin(self) -> User:
        return self.trusted(self.users[data.email("platform")])

    def admin_of(self, org_key: str) -> User:
        if org_key in ("city", "city_online"):
            return self.trusted(self.users[data.email("admin.city")])
        if org_key in ("county", "township"):
            return self.trusted(self.users[data.email("admin.county")])
        return self.platform_admin  # pharmacies and stations have no hospital admin here

    # --- building blocks ----------------------------------------------------------------------

    def staff_user(self, address: str, display_name: str, *, is_superuser: bool = False) -> User:
        user = User.objects.filter(email=address).first()
        if user is None:
            if is_superuser:
                user = User.objects.create_superuser(address, data.DEMO_PASSWORD, display_name=display_name)
            else:
                user = User.objects.create_user(address, data.DEMO_PASSWORD, display_name=display_name)
            self.result.count("staff accounts")
        self.users[address] = user
        return user

    def ensure_totp(self, user: User) -> None:
        if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
            enable_totp(user, data.TOTP_SECRET)
            self.result.count("TOTP authenticators")

    def ensure_grant(self, granter: User, user: User, role: str, org_key: str = "") -> None:
        organisation = self.orgs[org_key] if org_key else None
        active = RoleGrant.objects.filter(user=user, role=role, organization=organisation, revoked_at__isnull=True)
        if not active.exists():
            account_actions.grant_role(granter, user, role, organization_id=organisation.pk if organisation else None)
            self.result.count("role grants")

    # --- the steps ----------------------------------------------------------------------------

    def seed_platform(self) -> None:
        spec = data.ADMINS[0]
        platform = self.staff_user(spec.email, spec.display_name, is_superuser=True)
        self.ensure_grant(self.trusted(platform), platform, Role.PLATFORM_ADMIN)
        self.ensure_totp(platform)

    def seed_organisations(self) -> None:
        for spec in data.ORGANISATIONS:
            org = Organization.objects.filter(kind=spec.kind, name_zh=spec.name_zh).first()
            if org is None:
                org = directory_actions.create_organization(
                    self.platform_admin,
                    kind=spec.kind,
                    tier=spec.tier,
                    name_zh=spec.name_zh,
                    name_en=spec.name_en,
                    licence_number=spec.licence_number,
                    province=spec.province,
                    city=spec.city,
                    county=spec.county,
                    address=spec.address,
                    phone=spec.phone,
                    attached_to=self.orgs[spec.attached_to] if spec.attached_to else None,
                    parent=self.orgs[spec.parent] if spec.parent else None,
                )
                self.result.count("organisations")
            self.orgs[spec.key] = org
        for code, (name_zh, name_en, paediatric) in data.SPECIALTIES.items():
            specialty, created = Specialty.objects.get_or_create(
                code=code, defaults={"name_zh": name_zh, "name_en": name_en, "is_paediatric": paediatric}
            )
            if created:
                self.result.count("specialties")
        for org_key, codes in data.DEPARTMENTS.items():
            for code in codes:
                specialty = Specialty.objects.get(code=code)
                department, created = Department.objects.get_or_create(
                    organization=self.orgs[org_key],
                    code=code,
                    defaults={"name_zh": specialty.name_zh, "name_en": specialty.name_en, "specialty": specialty},
                )
                if created:
                    self.result.count("departments")
                self.departments[(org_key, code)] = department

    def seed_staff(self) -> None:
        for spec in data.ADMINS[1:]:
            user = self.staff_user(spec.email, spec.display_name)
            for org_key in [spec.organisation, *spec.extra_organisations]:
                self.ensure_grant(self.platform_admin, user, spec.role, org_key)
            if spec.has_totp:
                self.ensure_totp(user)
        for spec in data.OTHER_STAFF:
            user = self.staff_user(spec.email, spec.display_name)
            self.ensure_grant(self.platform_admin, user, spec.role, spec.organisation)

    def seed_practitioners(self) -> None:
        for spec in [*data.DOCTORS, *data.PHARMACISTS]:
            user = self.staff_user(spec.email, spec.legal_name)
            admin = self.admin_of(spec.organisation)
            practitioner = Practitioner.objects.filter(user=user).first()
            if practitioner is None:
                department = self.departments.get((spec.organisation, spec.department))
                practitioner = directory_actions.register_practitioner(
                    admin,
                    user,
                    legal_name=spec.legal_name,
                    profession=Profession.PHARMACIST if spec.is_pharmacist else Profession.PHYSICIAN,
                    licence_number=spec.licence_number,
                    title=spec.title,
                    primary_institution=self.orgs[spec.organisation],
                    independent_practice_since=spec.practice_since,
                    institution_consent=True,
                    institution_consent_reference=f"DEMO-CONSENT-{spec.licence_number[-4:]}",
                    department_id=department.pk if department else None,
                    specialty_ids=[department.specialty_id] if department and department.specialty_id else [],
                )
                self.result.count("practitioners")
            # Walk the status to the wanted one through the admin's verification action (R5).
            wants_verified_first = spec.status in (VerificationStatus.VERIFIED, VerificationStatus.SUSPENDED)
            if wants_verified_first and practitioner.verification_status == VerificationStatus.PENDING:
                directory_actions.change_verification(admin, practitioner.pk, VerificationStatus.VERIFIED)
                practitioner.refresh_from_db()
                self.result.count("verification changes")
            if (
                spec.status == VerificationStatus.SUSPENDED
                and practitioner.verification_status == VerificationStatus.VERIFIED
            ):
                directory_actions.change_verification(
                    admin, practitioner.pk, VerificationStatus.SUSPENDED, reason=spec.status_reason
                )
                self.result.count("verification changes")
            if spec.has_totp:
                self.ensure_totp(user)

    def seed_patients(self) -> None:
        city_admin = self.admin_of("city")
        county_admin = self.admin_of("county")
        for plan in data.patient_plan(clock.today()):
            person = plan.person
            user = User.objects.filter(email=plan.email).first()
            if user is None:
                user = account_actions.sign_up_patient(
                    email=plan.email,
                    password=data.DEMO_PASSWORD,
                    legal_name=person.legal_name,
                    id_number=person.id_number,
                    birth_date=person.birth_date,
                    sex=person.sex,
                    phone=person.phone,
                    language="zh-hans" if plan.number % 5 else "en",
                )
                self.result.count("patient accounts")
            self.users[plan.email] = user
            patients = [Patient.objects.get(account=user)]
            for member in plan.family:
                link = FamilyLink.objects.filter(
                    holder=user, patient__legal_name=member.legal_name, ended_at__isnull=True
                ).first()
                if link is None:
                    link = account_actions.add_family_member(
                        user,
                        legal_name=member.legal_name,
                        id_number=member.id_number,
                        birth_date=member.birth_date,
                        sex=member.sex,
                        relationship=member.relationship,
                        phone=member.phone,
                    )
                    self.result.count("family members")
                patients.append(link.patient)
            for patient in patients:
                self.ensure_registration(city_admin, patient, "city")
                if plan.is_rural:
                    self.ensure_registration(county_admin, patient, "county")

    def ensure_registration(self, actor: User, patient: Patient, org_key: str) -> None:
        hospital = self.orgs[org_key]
        if not patient.registrations.filter(hospital=hospital).exists():
            records_actions.register_patient_at_hospital(actor, patient, hospital)
            self.result.count("hospital registrations")

    def seed_chart_views(self) -> None:
        """A few doctors open a few charts, through the audited door, so that "who looked at my
        records" (R23) has rows to show. Each opening happens once."""
        plans = {plan.number: plan for plan in data.patient_plan(clock.today())}
        for doctor_email, number, member_index in data.CHART_VIEWS:
            holder = self.users[plans[number].email]
            if member_index is None:
                patient = Patient.objects.get(account=holder)
            else:
                name = plans[number].family[member_index].legal_name
                patient = FamilyLink.objects.get(holder=holder, patient__legal_name=name, ended_at__isnull=True).patient
            doctor = self.trusted(self.users[doctor_email])
            seen = AuditEntry.objects.filter(
                actor_id=doctor.pk, patient_id=patient.pk, action="patient.chart.view", outcome="success"
            )
            if not seen.exists():
                records_access.access_patient_chart(doctor, patient.pk)
                self.result.count("chart openings")

    def seed_schedules(self) -> None:
        """Weekly clinic sessions (in person, video, text) for every verified doctor, made by an admin
        of the doctor's hospital through ``scheduling.actions.create_session``, so that the coming
        days have free slots to book. Doctors who already have sessions are left as they are."""
        sessions = seed_schedules()
        if sessions:
            self.result.created["clinic sessions"] = self.result.created.get("clinic sessions", 0) + sessions

    def run(self) -> SeedResult:
        self.seed_platform()
        self.seed_organisations()
        self.seed_staff()
        self.seed_practitioners()
        self.seed_patients()
        self.seed_chart_views()
        self.seed_schedules()  # after the people: the sessions need the verified doctors and their admins
        self.seed_consultations()  # last: the consultations need the patients, doctors and departments
        if boxes := seed_pharmacy():  # stock through real EPCIS events and the receiving action (pharmacy.demo)
            self.result.created["boxes in pharmacy stock"] = boxes
        return self.result

    def seed_consultations(self) -> None:
        """A few consultations through the real actions (``consultations.demo``): a completed follow-up
        with a signed record and a review to moderate, a chat in progress, a patient in a queue, a
        question waiting to be accepted. Scenarios already present are skipped."""
        made = seed_consultations()
        if made:
            self.result.created["consultations"] = self.result.created.get("consultations", 0) + made


def seed() -> SeedResult:
    """Create whatever of the demo is missing, in one transaction, and say what was created."""
    hashers = ["nethospital.demo.seed.DemoPasswordHasher", *settings.PASSWORD_HASHERS]
    with override_settings(PASSWORD_HASHERS=hashers), transaction.atomic():
        return Seeder().run()
