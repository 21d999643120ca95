"""Acceptance, in a real Chromium: a person new to the service signs up in Chinese, finds a
cardiologist of the city hospital by a symptom word, books a slot, sees it in 我的预约, cancels it
and sees it cancelled there."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from nethospital.accounts.choices import Sex
from nethospital.accounts.identity import make_number
from nethospital.core import clock
from nethospital.scheduling import actions
from nethospital.scheduling.choices import AppointmentStatus
from nethospital.scheduling.models import Appointment, Slot
from nethospital.testing import factories

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("transactional_db")]


def test_a_new_patient_finds_a_cardiologist_in_chinese_books_and_cancels(browser, live_server):
    # Given a city hospital with a verified cardiologist whose slots (the day after tomorrow) are
    # released (the default policy opens them 7 days ahead at 08:00), and a neurologist.
    hospital = factories.hospital(name_zh="北京协和医院")
    factories.internet_hospital(hospital)
    admin = factories.hospital_admin(hospital)
    factories.specialty("neurology", "神经内科", "Neurology")
    cardiologist = factories.doctor(hospital, admin=admin, legal_name="王心")
    neurologist = factories.doctor(hospital, admin=admin, legal_name="赵脑", department_code="neurology")
    day = clock.today() + dt.timedelta(days=2)
    actions.create_session(
        admin,
        cardiologist.pk,
        on_date=day,
        period="morning",
        start_time=dt.time(9, 0),
        end_time=dt.time(10, 0),
        slot_minutes=15,
        capacity=1,
        modality="in_person",
        fee=50,
    )
    first_slot = Slot.objects.filter(practitioner=cardiologist).order_by("starts_at").first()
    assert first_slot is not None and first_slot.release_at <= timezone.now()

    context = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})  # a phone
    page = context.new_page()

    # The person signs up through the real sign-up page, in Chinese.
    page.goto(f"{live_server.url}/")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    page.click("text=实名注册")
    birth = dt.date(1990, 5, 20)
    page.fill("input[name=email]", "zhou.min@example.org")
    page.fill("input[name=password]", "Quiet-River-2024")
    page.fill("input[name=password2]", "Quiet-River-2024")
    page.fill("input[name=legal_name]", "周敏")
    page.fill("input[name=id_number]", make_number("330102", birth, 66, Sex.FEMALE))
    page.fill("input[name=birth_date]", birth.isoformat())
    page.check("input[name=sex][value=F]")
    page.fill("input[name=phone]", "13700002222")
    with page.expect_navigation():
        page.click("button[type=submit] >> text=创建账户")
    assert page.url == f"{live_server.url}/"

    # Finds a doctor by the symptom word 胸痛 (chest pain).
    with page.expect_navigation():
        page.click(".site-nav >> text=找医生")
    assert page.locator("h1").inner_text().strip() == "找医生"
    assert "无付费推广" in page.locator("#ordering-note").inner_text()
    page.fill("input[name=text]", "胸痛")
    with page.expect_navigation():
        page.click("form.search-form button[type=submit]")
    card = page.locator(f"#doctor-{cardiologist.pk}")
    assert card.is_visible()
    assert "王心" in card.inner_text() and "心血管内科" in card.inner_text() and "北京协和医院" in card.inner_text()
    assert page.locator(f"#doctor-{neurologist.pk}").count() == 0

    # Opens the doctor's page and picks the first free time.
    with page.expect_navigation():
        card.locator("h2 a").click()
    assert "王心" in page.locator("h1").inner_text()
    assert "已审核" in page.locator("#verification-badge").inner_text()
    assert "暂无评价" in page.locator("#rating").inner_text()
    with page.expect_navigation():
        page.click(f"#slot-{first_slot.pk}")

    # Confirms the booking for herself.
    assert page.locator("h1").inner_text().strip() == "确认预约"
    local_start = timezone.localtime(first_slot.starts_at)
    assert f"{local_start:%Y-%m-%d} " in page.locator("#booking-time").inner_text()
    assert "周敏（本人）" in page.locator("select[name=patient]").inner_text()
    with page.expect_navigation():
        page.click("#confirm-button")

    # Sees it in 我的预约.
    assert page.locator("h1").inner_text().strip() == "我的预约"
    appointment = Appointment.objects.get(patient__legal_name="周敏")
    assert "预约成功" in page.locator(".messages").inner_text()
    row = page.locator(f"#upcoming #appointment-{appointment.pk}")
    assert "王心" in row.inner_text() and "已预约" in row.locator(".status").inner_text()

    # Cancels it, and sees it cancelled there.
    row.locator("input[name=reason]").fill("临时有事")
    with page.expect_navigation():
        row.locator("button >> text=取消预约").click()
    assert "预约已取消" in page.locator(".messages").inner_text()
    assert page.locator(f"#upcoming #appointment-{appointment.pk}").count() == 0
    cancelled = page.locator(f"#history #appointment-{appointment.pk}")
    assert "已取消" in cancelled.locator(".status").inner_text()
    assert "临时有事" in cancelled.inner_text()
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert Slot.objects.get(pk=first_slot.pk).booked_count == 0
    context.close()
