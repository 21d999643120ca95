import datetime as dt

import pytest

from nethospital.core import clock
from nethospital.core.errors import DomainError
from nethospital.directory import actions, errors, rules
from nethospital.directory.choices import OrganizationKind, VerificationStatus
from nethospital.directory.models import Organization, Practitioner, VerificationEvent
from nethospital.testing import factories

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.UTC)


def test_a_verified_doctor_with_consent_and_years_may_practise(doctor):
    assert rules.practice_refusal(doctor) is None
    assert rules.bookable_practitioners().filter(pk=doctor.pk).exists()


def test_pending_and_suspended_doctors_may_not(city_hospital):
    pending = factories.doctor(city_hospital, status=VerificationStatus.PENDING)
    suspended = factories.doctor(city_hospital, status=VerificationStatus.SUSPENDED)
    assert rules.practice_refusal(pending) == errors.NOT_VERIFIED
    assert rules.practice_refusal(suspended) == errors.SUSPENDED
    assert not rules.bookable_practitioners().filter(pk__in=[pending.pk, suspended.pk]).exists()


def test_verification_refuses_a_doctor_under_three_years_of_practice(city_hospital):
    with clock.frozen(NOW):
        newcomer = factories.doctor(
            city_hospital, status=VerificationStatus.PENDING, practice_since=dt.date(2024, 1, 10)
        )
        admin = factories.hospital_admin(city_hospital)
        with pytest.raises(DomainError) as caught:
            actions.change_verification(admin, newcomer.pk, VerificationStatus.VERIFIED)
        assert caught.value.code == errors.TOO_LITTLE_PRACTICE.code
        assert "3" in caught.value.message
    assert Practitioner.objects.get(pk=newcomer.pk).verification_status == VerificationStatus.PENDING


def test_the_three_year_rule_is_read_from_the_clock_on_every_check(city_hospital):
    doctor = factories.doctor(city_hospital, practice_since=dt.date(2020, 3, 1))
    with clock.frozen(dt.datetime(2023, 2, 28, 12, 0, tzinfo=dt.UTC)):
        assert rules.practice_refusal(doctor) == errors.TOO_LITTLE_PRACTICE
        assert not rules.bookable_practitioners().filter(pk=doctor.pk).exists()
    with clock.frozen(dt.datetime(2023, 3, 1, 12, 0, tzinfo=dt.UTC)):
        assert rules.practice_refusal(doctor) is None
        assert rules.bookable_practitioners().filter(pk=doctor.pk).exists()


def test_verification_needs_the_institutions_consent(city_hospital):
    no_consent = factories.doctor(city_hospital, status=VerificationStatus.PENDING, consent=False)
    admin = factories.hospital_admin(city_hospital)
    with pytest.raises(DomainError) as caught:
        actions.change_verification(admin, no_consent.pk, VerificationStatus.VERIFIED)
    assert caught.value.code == errors.NO_INSTITUTION_CONSENT.code


def test_suspension_needs_a_reason_is_recorded_and_takes_effect(doctor, city_hospital):
    admin = factories.hospital_admin(city_hospital)
    with pytest.raises(DomainError) as caught:
        actions.change_verification(admin, doctor.pk, VerificationStatus.SUSPENDED, reason="  ")
    assert caught.value.code == errors.REASON_REQUIRED.code
    actions.change_verification(admin, doctor.pk, VerificationStatus.SUSPENDED, reason="执业证书过期")
    doctor.refresh_from_db()
    assert (doctor.verification_status, doctor.status_reason) == (VerificationStatus.SUSPENDED, "执业证书过期")
    event = VerificationEvent.objects.filter(practitioner=doctor).last()
    assert (event.from_status, event.to_status, event.actor) == ("verified", "suspended", admin)
    with pytest.raises(DomainError) as caught:
        rules.ensure_can_practise(doctor)
    assert caught.value.code == errors.SUSPENDED.code


def test_an_admin_of_another_hospital_cannot_verify_and_bad_transitions_are_refused(city_hospital):
    other = factories.hospital(name_zh="温州市人民医院", name_en="Wenzhou People's Hospital")
    pending = factories.doctor(city_hospital, status=VerificationStatus.PENDING)
    outsider = factories.hospital_admin(other)
    with pytest.raises(DomainError) as caught:
        actions.change_verification(outsider, pending.pk, VerificationStatus.VERIFIED)
    assert caught.value.code == "permission_denied"
    admin = factories.hospital_admin(city_hospital)
    with pytest.raises(DomainError) as caught:
        actions.change_verification(admin, pending.pk, VerificationStatus.SUSPENDED, reason="x")
    assert caught.value.code == errors.BAD_TRANSITION.code
    assert Practitioner.objects.get(pk=pending.pk).verification_status == VerificationStatus.PENDING


def test_an_internet_hospital_must_be_attached_to_a_licensed_physical_hospital(city_hospital):
    pharmacy = actions.create_organization(
        None,
        kind=OrganizationKind.PHARMACY,
        name_zh="康民大药房",
        name_en="Kangmin Pharmacy",
        licence_number="YP-1",
        province="浙江省",
        city="杭州",
    )
    before = Organization.objects.count()
    for attached in (None, pharmacy):
        with pytest.raises(DomainError) as caught:
            actions.create_organization(
                None,
                kind=OrganizationKind.INTERNET_HOSPITAL,
                name_zh="某互联网医院",
                name_en="Some Internet Hospital",
                province="浙江省",
                city="杭州",
                attached_to=attached,
            )
        assert caught.value.code == errors.INTERNET_HOSPITAL_NEEDS_PHYSICAL.code
    assert Organization.objects.count() == before
    online = factories.internet_hospital(city_hospital)
    assert online.physical_hospital == city_hospital
