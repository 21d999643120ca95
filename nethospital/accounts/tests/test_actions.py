import datetime as dt

import pytest
from django.core import serializers
from django.db import connection

from nethospital.accounts import actions, errors
from nethospital.accounts.choices import Relationship, Role, Sex
from nethospital.accounts.identity import make_number
from nethospital.accounts.models import FamilyLink, Patient, RoleGrant, User
from nethospital.core import clock
from nethospital.core.errors import DomainError
from nethospital.core.models import AuditEntry
from nethospital.testing import factories

pytestmark = pytest.mark.django_db
NUMBER = make_number("330106", dt.date(1990, 3, 8), 123, Sex.FEMALE)


def sign_up(**overrides):
    fields = {
        "email": "wang.fang@example.org",
        "password": "Correct-Horse-42",
        "legal_name": "王芳",
        "id_number": NUMBER,
        "birth_date": dt.date(1990, 3, 8),
        "sex": Sex.FEMALE,
        "phone": "13912345678",
    }
    fields.update(overrides)
    return actions.sign_up_patient(**fields)


def counts():
    return (User.objects.count(), Patient.objects.count(), RoleGrant.objects.count(), AuditEntry.objects.count())


def test_sign_up_creates_account_identity_role_and_audit_without_clear_number():
    user = sign_up()
    patient = Patient.objects.get(account=user)
    assert (patient.legal_name, patient.birth_date, patient.sex) == ("王芳", dt.date(1990, 3, 8), Sex.FEMALE)
    assert patient.id_number_masked == NUMBER[:4] + "*" * 10 + NUMBER[-4:]
    assert user.roles() == {Role.PATIENT}
    assert AuditEntry.objects.filter(action="patient.sign_up", patient_id=patient.pk).count() == 1
    # The whole database, as rows, never holds the number in clear.
    dump = serializers.serialize("json", [*User.objects.all(), *Patient.objects.all(), *AuditEntry.objects.all()])
    assert NUMBER not in dump
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_patient")
        assert NUMBER not in repr(cursor.fetchall())
        # Every row of every table, as the database returns it (what a dump would hold).
        tables = connection.introspection.table_names(cursor)
        assert "accounts_patient" in tables and "core_auditentry" in tables
        for table in tables:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            assert NUMBER not in repr(cursor.fetchall()), table


@pytest.mark.parametrize(
    ("overrides", "field", "code_message"),
    [
        ({"id_number": NUMBER[:-1] + ("0" if NUMBER[-1] != "0" else "1")}, "id_number", errors.ID_NUMBER_CHECK),
        ({"id_number": NUMBER[:10]}, "id_number", errors.ID_NUMBER_LENGTH),
        ({"id_number": "33010619900230" + "1234"}, "id_number", errors.ID_NUMBER_BIRTH_DATE),
        ({"birth_date": dt.date(1990, 3, 9)}, "birth_date", errors.BIRTH_DATE_MISMATCH),
        ({"sex": Sex.MALE}, "sex", errors.SEX_MISMATCH),
        ({"sex": "Z"}, "sex", errors.CHOICE_INVALID),
        ({"phone": "12345"}, "phone", errors.PHONE_INVALID),
        ({"legal_name": "王" * 51}, "legal_name", errors.FIELD_TOO_LONG),
        ({"legal_name": "<script>"}, "legal_name", errors.LEGAL_NAME_INVALID),
        ({"email": "not-an-email"}, "email", errors.EMAIL_INVALID),
    ],
)
def test_bad_sign_up_input_names_the_field_and_changes_nothing(overrides, field, code_message):
    before = counts()
    with pytest.raises(DomainError) as caught:
        sign_up(**overrides)
    assert caught.value.field_errors()[field] == [str(code_message.message)]
    assert counts() == before


def test_an_identity_number_can_hold_only_one_account():
    sign_up()
    before = counts()
    with pytest.raises(DomainError) as caught:
        sign_up(email="someone.else@example.org")
    assert caught.value.field_errors() == {"id_number": [str(errors.ID_NUMBER_TAKEN.message)]}
    assert counts() == before


def test_family_member_under_six_is_registered_with_the_holder_as_guardian():
    parent = factories.patient_user()
    with clock.frozen(dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)):
        child_number = make_number("330106", dt.date(2023, 5, 1), 40, Sex.MALE)
        link = actions.add_family_member(
            parent,
            legal_name="张小明",
            id_number=child_number,
            birth_date=dt.date(2023, 5, 1),
            sex=Sex.MALE,
            relationship=Relationship.CHILD,
        )
    assert link.is_guardian is True
    assert link.patient.account is None
    assert link.patient.registered_by == parent


def test_a_child_under_six_cannot_be_added_as_a_sibling_or_spouse():
    holder = factories.patient_user()
    child_number = make_number("330106", dt.date(2024, 1, 2), 41, Sex.FEMALE)
    before = counts()
    with pytest.raises(DomainError) as caught:
        actions.add_family_member(
            holder,
            legal_name="张小红",
            id_number=child_number,
            birth_date=None,
            sex=None,
            relationship=Relationship.SIBLING,
        )
    assert caught.value.code == errors.YOUNG_CHILD_NEEDS_GUARDIAN.code
    assert counts() == before


def test_the_only_guardian_of_a_young_child_cannot_end_the_link_but_an_adult_link_can_end():
    holder = factories.patient_user()
    child = actions.add_family_member(
        holder,
        legal_name="张小明",
        id_number=make_number("330106", dt.date(2024, 6, 1), 42, Sex.MALE),
        birth_date=None,
        sex=None,
        relationship=Relationship.CHILD,
    )
    parent = actions.add_family_member(
        holder,
        legal_name="张建国",
        id_number=make_number("330106", dt.date(1950, 6, 1), 43, Sex.MALE),
        birth_date=None,
        sex=None,
        relationship=Relationship.PARENT,
    )
    with pytest.raises(DomainError) as caught:
        actions.end_family_link(holder, child.pk)
    assert caught.value.code == errors.LAST_GUARDIAN.code
    assert FamilyLink.objects.get(pk=child.pk).ended_at is None
    actions.end_family_link(holder, parent.pk)
    assert FamilyLink.objects.get(pk=parent.pk).ended_at is not None
    assert parent.is_guardian is False


def test_a_family_member_cannot_be_oneself_or_someone_already_registered():
    holder = factories.patient_user()
    other = factories.patient_user()
    own_number = None
    for user, expected in ((holder, errors.FAMILY_SELF), (other, errors.ID_NUMBER_TAKEN)):
        patient = Patient.objects.get(account=user)
        from nethospital.accounts.identity import decrypt

        own_number = decrypt(patient.id_number_encrypted)
        with pytest.raises(DomainError) as caught:
            actions.add_family_member(
                holder,
                legal_name="某人",
                id_number=own_number,
                birth_date=None,
                sex=None,
                relationship=Relationship.SPOUSE,
            )
        assert caught.value.field_errors()["id_number"] == [str(expected.message)]
    assert FamilyLink.objects.count() == 0


def test_roles_unknown_or_misplaced_are_refused(city_hospital):
    root = User.objects.create_superuser(email="root@example.org", password="x")
    root.is_mfa_verified = True
    target = factories.staff_user()
    for role, org, expected in [
        ("surgeon", None, errors.UNKNOWN_ROLE),
        (Role.DOCTOR, None, errors.ROLE_NEEDS_ORGANISATION),
        (Role.REGULATOR, city_hospital.pk, errors.ROLE_TAKES_NO_ORGANISATION),
    ]:
        with pytest.raises(DomainError) as caught:
            actions.grant_role(root, target, role, organization_id=org)
        assert caught.value.code == expected.code
    assert not RoleGrant.objects.filter(user=target).exists()
    actions.grant_role(root, target, Role.REGULATOR)
    with pytest.raises(DomainError) as caught:
        actions.grant_role(root, target, Role.REGULATOR)
    assert caught.value.code == errors.ROLE_ALREADY_GRANTED.code


def test_a_hospital_admin_staffs_only_their_own_hospital_and_needs_mfa(city_hospital):
    other_hospital = factories.hospital(name_zh="杭州市第二医院", name_en="Hangzhou Second Hospital")
    admin = factories.hospital_admin(city_hospital)
    target = factories.staff_user()
    grant = actions.grant_role(admin, target, Role.PHARMACY_STAFF, organization_id=city_hospital.pk)
    assert grant.granted_by == admin
    for role, org in [
        (Role.DOCTOR, other_hospital.pk),
        (Role.REGULATOR, None),
        (Role.HOSPITAL_ADMIN, city_hospital.pk),
    ]:
        with pytest.raises(DomainError) as caught:
            actions.grant_role(admin, target, role, organization_id=org)
        assert caught.value.code == "permission_denied"
    admin.is_mfa_verified = False
    with pytest.raises(DomainError) as caught:
        actions.grant_role(admin, target, Role.COURIER, organization_id=city_hospital.pk)
    assert caught.value.code == "mfa_required"
    assert RoleGrant.objects.filter(user=target).count() == 1
