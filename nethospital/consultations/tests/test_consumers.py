"""The consultation websockets against the real ASGI application (session auth, origin check,
routing) and a real database, with Channels' WebsocketCommunicator. Transactional tests: the
actions publish their events after commit, as in production.

Each test runs one coroutine with ``async_to_sync``; the consumers' database calls are
thread-sensitive, so they run in the test's thread on its connection."""

from __future__ import annotations

import sys
import types
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

# ``channels.testing`` imports its live-server test case, which needs daphne; we serve with uvicorn
# and do not install daphne. The communicator does not need it: give the import an empty stand-in.
if "channels.testing" not in sys.modules:
    sys.modules.setdefault("channels.testing.live", types.ModuleType("channels.testing.live"))
    sys.modules["channels.testing.live"].ChannelsLiveServerTestCase = None  # type: ignore[attr-defined]
from channels.testing import WebsocketCommunicator

from nethospital.asgi import application
from nethospital.consultations import actions, consumers, events
from nethospital.consultations.actions import Declaration
from nethospital.consultations.choices import CallOutcome, ProofKind
from nethospital.consultations.models import CallRecord, Consultation, Message, Participant
from nethospital.core import audit
from nethospital.core.context import RequestContext
from nethospital.core.errors import DomainError
from nethospital.core.models import AuditEntry
from nethospital.testing import factories

pytestmark = pytest.mark.django_db(transaction=True)

FOLLOW_UP = Declaration(
    condition="高血压复诊 hypertension follow-up",
    first_visit=False,
    proof_kind=ProofKind.OTHER_HOSPITAL,
    proof_hospital="县人民医院",
    proof_summary="2025-03 诊断原发性高血压 I10",
)
TIMEOUT = 5


@pytest.fixture(autouse=True)
def _database_threads_released():
    # On PostgreSQL the sockets' database calls run on threads with pooled connections of their own;
    # hand them back after each test, or the test database cannot be dropped at the end.
    yield
    consumers.close_database_threads()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async_to_sync(scenario)()


def db(function: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    return database_sync_to_async(function)


@pytest.fixture
def world(city_hospital, internet_hospital, login_as):
    admin = factories.hospital_admin(city_hospital)
    doctor = factories.doctor(city_hospital, admin=admin)
    doctor.user.is_mfa_verified = True  # for the actions the test calls directly
    patient_user = factories.patient_user()
    patient = factories.patient_of(patient_user)
    consultation = actions.join_queue(patient_user, patient.pk, doctor.department_id, FOLLOW_UP, channel="video")
    actions.pick_next(doctor.user)

    def cookie(user, *, mfa: bool = False) -> str:
        client = login_as(user, mfa=mfa)
        return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"

    return {
        "doctor": doctor,
        "user": patient_user,
        "patient": patient,
        "consultation": Consultation.objects.get(pk=consultation.pk),
        "patient_cookie": cookie(patient_user),
        "doctor_cookie": cookie(doctor.user, mfa=True),
        "cookie": cookie,
    }


def socket(path: str, cookie: str | None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, path, headers=headers)


def room(world) -> str:
    return f"/ws/consultations/{world['consultation'].pk}/"


async def opened(path: str, cookie: str | None) -> WebsocketCommunicator:
    communicator = socket(path, cookie)
    connected, _subprotocol = await communicator.connect(timeout=TIMEOUT)
    assert connected
    return communicator


async def hello(communicator: WebsocketCommunicator, after: int) -> list[dict[str, Any]]:
    await communicator.send_json_to({"type": "hello", "after": after})
    messages: list[dict[str, Any]] = []
    while True:
        frame = await communicator.receive_json_from(timeout=TIMEOUT)
        assert frame["type"] == "history"
        messages += frame["messages"]
        if not frame["more"]:
            return messages


async def refused(path: str, cookie: str | None) -> tuple[dict[str, Any], int]:
    communicator = socket(path, cookie)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected  # accepted only to say why, then closed
    error = await communicator.receive_json_from(timeout=TIMEOUT)
    closing = await communicator.receive_output(timeout=TIMEOUT)
    assert closing["type"] == "websocket.close"
    await communicator.wait()
    return error, closing["code"]


def message_rows(consultation_id: int) -> list[tuple[int, str, str]]:
    return list(
        Message.objects.filter(consultation_id=consultation_id, client_id__gt="")
        .order_by("seq")
        .values_list("seq", "client_id", "body")
    )


# --- who may connect (R6) ----------------------------------------------------------------------------
def test_anonymous_outsider_and_doctor_without_second_factor_are_refused(world):
    outsider = factories.patient_user()
    outsider_cookie = world["cookie"](outsider)
    doctor_without_mfa = world["cookie"](world["doctor"].user, mfa=False)

    async def scenario() -> None:
        error, code = await refused(room(world), None)
        assert (error["type"], error["code"], code) == ("error", "login_required", 4401)
        error, code = await refused(room(world), outsider_cookie)
        assert (error["code"], code) == ("consultation_not_found", 4403)
        error, code = await refused(room(world), doctor_without_mfa)
        assert (error["code"], code) == ("mfa_required", 4403)
        error, code = await refused("/ws/consultations/999999/", world["patient_cookie"])
        assert (error["code"], code) == ("consultation_not_found", 4403)
        # The same doctor with a second factor in the session is let in.
        doctor = await opened(room(world), world["doctor_cookie"])
        assert [m["seq"] for m in await hello(doctor, 0)] == [1]
        await doctor.disconnect()

    run(scenario)


def test_a_socket_from_another_site_is_refused(world):
    async def scenario() -> None:
        communicator = WebsocketCommunicator(
            application,
            room(world),
            headers=[(b"origin", b"https://evil.example"), (b"cookie", world["patient_cookie"].encode())],
        )
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert not connected

    run(scenario)


# --- chat -------------------------------------------------------------------------------------------
def test_hello_returns_the_history_in_order_and_the_read_is_audited(world):
    consultation = world["consultation"]
    actions.post_message(world["user"], consultation.pk, "p-1", "医生您好")
    actions.post_message(world["doctor"].user, consultation.pk, "d-1", "您好 <b>请讲</b>")
    reads_before = AuditEntry.objects.filter(action="consultation.messages.read").count()

    async def scenario() -> None:
        patient = await opened(room(world), world["patient_cookie"])
        await patient.send_json_to({"type": "hello", "after": 0})
        frame = await patient.receive_json_from(timeout=TIMEOUT)
        assert frame["type"] == "history" and frame["more"] is False
        assert frame["status"] == "active" and frame["call"] is None
        history = frame["messages"]
        assert [(m["seq"], m["kind"], m["client_id"]) for m in history] == [
            (1, "system", ""),
            (2, "text", "p-1"),
            (3, "text", "d-1"),
        ]
        assert history[0]["system_code"] == "started"
        assert history[2]["body"] == "您好 <b>请讲</b>"  # stored as written; the page sets it as text
        assert (history[2]["sender_id"], history[2]["sender_role"]) == (world["doctor"].user.pk, "doctor")
        assert await hello(patient, 2) == history[2:]
        assert await patient.receive_nothing()
        await patient.disconnect()

    run(scenario)
    assert AuditEntry.objects.filter(action="consultation.messages.read").count() == reads_before + 2


def test_a_message_is_stored_acked_and_broadcast_to_everyone_once(world):
    consultation = world["consultation"]

    async def scenario() -> None:
        patient = await opened(room(world), world["patient_cookie"])
        doctor = await opened(room(world), world["doctor_cookie"])
        await hello(patient, 0)
        await hello(doctor, 0)

        await patient.send_json_to({"type": "message", "client_id": "c-1", "body": "我头晕"})
        ack = await patient.receive_json_from(timeout=TIMEOUT)
        assert ack == {"type": "ack", "client_id": "c-1", "seq": 2}
        assert await db(message_rows)(consultation.pk) == [(2, "c-1", "我头晕")]  # stored before the ack

        for communicator in (patient, doctor):
            echo = await communicator.receive_json_from(timeout=TIMEOUT)
            assert (echo["type"], echo["seq"], echo["client_id"], echo["body"], echo["sender_role"]) == (
                "message",
                2,
                "c-1",
                "我头晕",
                "patient",
            )
            assert await communicator.receive_nothing()

        # The doctor answers; the patient gets it once.
        await doctor.send_json_to({"type": "message", "client_id": "d-1", "body": "多久了？"})
        assert (await doctor.receive_json_from(timeout=TIMEOUT))["seq"] == 3
        assert (await patient.receive_json_from(timeout=TIMEOUT))["body"] == "多久了？"
        assert (await doctor.receive_json_from(timeout=TIMEOUT))["body"] == "多久了？"
        assert await patient.receive_nothing()
        assert await doctor.receive_nothing()
        await patient.disconnect()
        await doctor.disconnect()

    run(scenario)
    assert message_rows(consultation.pk) == [(2, "c-1", "我头晕"), (3, "d-1", "多久了？")]
    audit = AuditEntry.objects.filter(action="consultation.message.write").order_by("sequence")
    assert [(e.channel, e.detail) for e in audit] == [("websocket", {"seq": 2}), ("websocket", {"seq": 3})]


def test_a_resend_with_the_same_client_id_acks_the_same_seq_and_is_not_broadcast(world):
    consultation = world["consultation"]

    async def scenario() -> None:
        patient = await opened(room(world), world["patient_cookie"])
        doctor = await opened(room(world), world["doctor_cookie"])
        await hello(patient, 0)
        await hello(doctor, 0)
        await patient.send_json_to({"type": "message", "client_id": "c-1", "body": "第一次"})
        assert await patient.receive_json_from(timeout=TIMEOUT) == {"type": "ack", "client_id": "c-1", "seq": 2}
        assert (await patient.receive_json_from(timeout=TIMEOUT))["seq"] == 2
        assert (await doctor.receive_json_from(timeout=TIMEOUT))["seq"] == 2

        # The line dropped before the ack arrived: the client sends the same message again.
        await patient.disconnect()
        again = await opened(room(world), world["patient_cookie"])
        assert [m["client_id"] for m in await hello(again, 1)] == ["c-1"]
        await again.send_json_to({"type": "message", "client_id": "c-1", "body": "第一次"})
        assert await again.receive_json_from(timeout=TIMEOUT) == {"type": "ack", "client_id": "c-1", "seq": 2}
        assert await again.receive_nothing()
        assert await doctor.receive_nothing()
        await again.disconnect()
        await doctor.disconnect()

    run(scenario)
    assert message_rows(consultation.pk) == [(2, "c-1", "第一次")]


def test_reconnecting_after_a_seq_gets_exactly_the_rest_in_order(world):
    consultation = world["consultation"]

    async def scenario() -> None:
        patient = await opened(room(world), world["patient_cookie"])
        assert [m["seq"] for m in await hello(patient, 0)] == [1]
        await patient.disconnect()
        # While the patient is away the doctor writes three messages.
        for i in range(3):
            await db(actions.post_message)(world["doctor"].user, consultation.pk, f"d-{i}", f"第{i}条")
        back = await opened(room(world), world["patient_cookie"])
        rest = await hello(back, 1)
        assert [(m["seq"], m["body"]) for m in rest] == [(2, "第0条"), (3, "第1条"), (4, "第2条")]
        # and then live messages continue from there, nothing twice
        await db(actions.post_message)(world["doctor"].user, consultation.pk, "d-3", "第3条")
        live = await back.receive_json_from(timeout=TIMEOUT)
        assert (live["type"], live["seq"]) == ("message", 5)
        assert await back.receive_nothing()
        await back.disconnect()

    run(scenario)


def test_an_event_that_overtakes_an_earlier_one_is_delivered_after_it(world):
    # With several server processes, the event of seq n+1 can reach a socket before (or without)
    # the event of seq n. The socket must still deliver n, then n+1.
    consultation = world["consultation"]
    layer = get_channel_layer()
    group = events.consultation_group(consultation.pk)

    async def scenario() -> None:
        patient = await opened(room(world), world["patient_cookie"])
        await hello(patient, 0)
        members = set(layer.groups[group])  # the in-memory layer's table; one socket is in the room
        assert len(members) == 1
        (channel,) = members
        await layer.group_discard(group, channel)
        await db(actions.post_message)(world["doctor"].user, consultation.pk, "d-1", "第一条")  # event lost
        await layer.group_add(group, channel)
        await db(actions.post_message)(world["doctor"].user, consultation.pk, "d-2", "第二条")
        first = await patient.receive_json_from(timeout=TIMEOUT)
        second = await patient.receive_json_from(timeout=TIMEOUT)
        assert [(first["seq"], first["body"]), (second["seq"], second["body"])] == [(2, "第一条"), (3, "第二条")]
        assert await patient.receive_nothing()
        await patient.disconnect()

    run(scenario)


def test_a_lost_last_event_is_read_when_a_receipt_shows_it_exists(world):
    # The last message of a conversation has no later message to reveal its lost event; the other
    # side's read receipt (or a status change) does.
    consultation = world["consultation"]
    layer = get_channel_layer()
    group = events.consultation_group(consultation.pk)

    async def scenario() -> None:
        patient = await opened(room(world), world["patient_cookie"])
        await hello(patient, 0)
        (channel,) = set(layer.groups[group])
        await layer.group_discard(group, channel)
        await db(actions.post_message)(world["doctor"].user, consultation.pk, "d-1", "最后一条")  # event lost
        await layer.group_add(group, channel)
        await db(actions.mark_read)(world["doctor"].user, consultation.pk, 2)
        read = await patient.receive_json_from(timeout=TIMEOUT)
        assert (read["type"], read["seq"]) == ("read", 2)
        message = await patient.receive_json_from(timeout=TIMEOUT)
        assert (message["type"], message["seq"], message["body"]) == ("message", 2, "最后一条")
        assert await patient.receive_nothing()
        await patient.disconnect()

    run(scenario)


def test_read_receipts_reach_the_room_and_never_move_back(world):
    consultation = world["consultation"]
    actions.post_message(world["user"], consultation.pk, "p-1", "在吗")

    async def scenario() -> None:
        patient = await opened(room(world), world["patient_cookie"])
        doctor = await opened(room(world), world["doctor_cookie"])
        await doctor.send_json_to({"type": "read", "seq": 2})
        expected = {"type": "read", "user_id": world["doctor"].user.pk, "role": "doctor", "seq": 2}
        assert await patient.receive_json_from(timeout=TIMEOUT) == expected
        assert await doctor.receive_json_from(timeout=TIMEOUT) == expected
        await doctor.send_json_to({"type": "read", "seq": 1})  # older: nothing changes, nothing sent
        assert await patient.receive_nothing()
        await patient.disconnect()
        await doctor.disconnect()

    run(scenario)
    doctor_row = Participant.objects.get(consultation=consultation, user=world["doctor"].user)
    assert doctor_row.last_read_seq == 2


def test_a_burst_of_read_receipts_is_stored_as_its_latest(world):
    consultation = world["consultation"]
    for i in range(3):
        actions.post_message(world["user"], consultation.pk, f"p-{i}", f"第{i}条")

    async def scenario() -> None:
        patient = await opened(room(world), world["patient_cookie"])
        doctor = await opened(room(world), world["doctor_cookie"])
        for seq in (2, 3, 4):
            await doctor.send_json_to({"type": "read", "seq": seq})
        seen = [(await patient.receive_json_from(timeout=TIMEOUT))["seq"]]
        while seen[-1] != 4:
            seen.append((await patient.receive_json_from(timeout=TIMEOUT))["seq"])
        assert seen in ([4], [2, 4])  # the ones that came while one was being stored are folded
        assert await patient.receive_nothing()
        await patient.disconnect()
        await doctor.disconnect()

    run(scenario)
    assert Participant.objects.get(consultation=consultation, user=world["doctor"].user).last_read_seq == 4


def test_bad_input_gets_an_error_and_the_socket_keeps_working(world):
    consultation = world["consultation"]
    limit = settings.NETHOSPITAL_MESSAGE_MAX_CHARS

    async def scenario() -> None:
        patient = await opened(room(world), world["patient_cookie"])
        await hello(patient, 0)
        await patient.send_to(text_data="{not json")
        assert (await patient.receive_json_from(timeout=TIMEOUT))["code"] == "invalid_input"
        await patient.send_to(text_data='["a list"]')
        assert (await patient.receive_json_from(timeout=TIMEOUT))["code"] == "invalid_input"
        await patient.send_json_to({"type": "no-such-thing"})
        assert (await patient.receive_json_from(timeout=TIMEOUT))["code"] == "invalid_input"
        await patient.send_json_to({"type": "hello", "after": -1})
        assert (await patient.receive_json_from(timeout=TIMEOUT))["code"] == "invalid_input"
        await patient.send_json_to({"type": "message", "client_id": "long", "body": "长" * (limit + 1)})
        error = await patient.receive_json_from(timeout=TIMEOUT)
        assert (error["type"], error["code"], error["client_id"]) == ("error", "message_too_long", "long")
        assert str(limit) in error["message"]
        await patient.send_json_to({"type": "message", "client_id": "blank", "body": "   "})
        assert (await patient.receive_json_from(timeout=TIMEOUT))["code"] == "message_empty"
        await patient.send_json_to({"type": "message", "client_id": "", "body": "没有编号"})
        assert (await patient.receive_json_from(timeout=TIMEOUT))["code"] == "client_id_invalid"
        await patient.send_json_to({"type": "message", "client_id": "n", "body": 42})
        assert (await patient.receive_json_from(timeout=TIMEOUT))["code"] == "invalid_input"
        await patient.send_json_to({"type": "call.update", "call_id": "nope", "state": "connected"})
        assert (await patient.receive_json_from(timeout=TIMEOUT))["code"] == "call_not_found"
        assert await patient.receive_nothing()
        # Still open and working.
        await patient.send_json_to({"type": "message", "client_id": "ok", "body": "好"})
        assert (await patient.receive_json_from(timeout=TIMEOUT))["type"] == "ack"
        await patient.disconnect()

    run(scenario)
    assert message_rows(consultation.pk) == [(2, "ok", "好")]


def test_refusals_are_told_in_the_language_of_the_page(world):
    limit = settings.NETHOSPITAL_MESSAGE_MAX_CHARS
    english = f"{world['patient_cookie']}; {settings.LANGUAGE_COOKIE_NAME}=en"
    chinese = f"{world['patient_cookie']}; {settings.LANGUAGE_COOKIE_NAME}=zh-hans"

    async def scenario() -> None:
        for cookie, expected in (
            (english, f"A message may have at most {limit} characters."),
            (chinese, f"消息最多 {limit} 个字符。"),
        ):
            patient = await opened(room(world), cookie)
            await patient.send_json_to({"type": "message", "client_id": "x", "body": "长" * (limit + 1)})
            error = await patient.receive_json_from(timeout=TIMEOUT)
            assert (error["code"], error["message"]) == ("message_too_long", expected)
            await patient.disconnect()

    run(scenario)


def test_a_flood_is_limited_per_socket(world):
    async def scenario() -> None:
        patient = await opened(room(world), world["patient_cookie"])
        for i in range(40):
            await patient.send_json_to({"type": "message", "client_id": f"f-{i}", "body": "刷屏"})
        frames = [await patient.receive_json_from(timeout=TIMEOUT) for _ in range(40)]
        acks = [f for f in frames if f["type"] == "ack"]
        limited = [f for f in frames if f["type"] == "error"]
        assert 20 <= len(acks) < 40
        assert {f["code"] for f in limited} == {"rate_limited"}
        await patient.disconnect()

    run(scenario)


def test_messages_to_a_closed_consultation_are_refused(world):
    consultation = world["consultation"]
    actions.refer_in_person(world["doctor"].user, consultation.pk, "需要面诊")

    async def scenario() -> None:
        patient = await opened(room(world), world["patient_cookie"])
        await patient.send_json_to({"type": "message", "client_id": "late", "body": "还在吗"})
        error = await patient.receive_json_from(timeout=TIMEOUT)
        assert (error["code"], error["client_id"]) == ("consultation_closed", "late")
        await patient.disconnect()

    run(scenario)
    assert message_rows(consultation.pk) == []


# --- calls and signalling --------------------------------------------------------------------------
def test_call_start_update_and_signals_between_the_participants(world):
    consultation = world["consultation"]
    guardian_like = factories.patient_user()  # not in the consultation: hears nothing

    async def scenario() -> None:
        patient = await opened(room(world), world["patient_cookie"])
        doctor = await opened(room(world), world["doctor_cookie"])
        await doctor.send_json_to({"type": "call.start"})
        reply = await doctor.receive_json_from(timeout=TIMEOUT)
        assert (reply["type"], reply["state"]) == ("call", "ringing")
        call_id = reply["call_id"]
        ringing = {"type": "call", "call_id": call_id, "state": "ringing"}
        assert await patient.receive_json_from(timeout=TIMEOUT) == ringing
        assert await doctor.receive_json_from(timeout=TIMEOUT) == ringing

        offer = {"kind": "offer", "sdp": "v=0 fake"}
        await doctor.send_json_to({"type": "signal", "call_id": call_id, "data": offer})
        assert await patient.receive_json_from(timeout=TIMEOUT) == {
            "type": "signal",
            "from": world["doctor"].user.pk,
            "call_id": call_id,
            "data": offer,
        }
        assert await doctor.receive_nothing()  # not echoed to the sender
        # Addressed to someone else: the patient does not get it.
        await doctor.send_json_to({"type": "signal", "call_id": call_id, "data": offer, "to": guardian_like.pk})
        assert await patient.receive_nothing()
        await patient.send_json_to({"type": "signal", "call_id": call_id, "data": "not an object"})
        assert (await patient.receive_json_from(timeout=TIMEOUT))["code"] == "invalid_input"

        await patient.send_json_to({"type": "call.update", "call_id": call_id, "state": "connected"})
        for communicator in (patient, doctor):
            assert await communicator.receive_json_from(timeout=TIMEOUT) == {
                "type": "call",
                "call_id": call_id,
                "state": "connected",
            }
        await doctor.send_json_to({"type": "call.update", "call_id": call_id, "state": "ended"})
        for communicator in (patient, doctor):
            ended = await communicator.receive_json_from(timeout=TIMEOUT)
            assert (ended["type"], ended["state"]) == ("call", "ended")
        # The call-ended system message follows in the chat.
        for communicator in (patient, doctor):
            await hello(communicator, 0)
        await patient.disconnect()
        await doctor.disconnect()

    run(scenario)
    call = CallRecord.objects.get(consultation=consultation)
    assert call.outcome == CallOutcome.ENDED
    assert sorted(call.participant_ids) == sorted([world["doctor"].user.pk, world["user"].pk])
    system = list(Message.objects.filter(consultation=consultation, kind="system").values_list("body", flat=True))
    assert system == ["started", "call_started", "call_ended"]


def test_status_changes_reach_the_room(world):
    consultation = world["consultation"]

    async def scenario() -> None:
        patient = await opened(room(world), world["patient_cookie"])
        await db(actions.refer_in_person)(world["doctor"].user, consultation.pk, "需要面诊")
        status = await patient.receive_json_from(timeout=TIMEOUT)
        assert (status["type"], status["consultation"], status["status"]) == ("status", consultation.pk, "referred")
        await patient.disconnect()

    run(scenario)


# --- the queue position and the workbench ------------------------------------------------------------
def test_queue_position_is_live_until_the_doctor_picks_the_patient(world, city_hospital):
    doctor, dept = world["doctor"], world["doctor"].department
    first_user, second_user = factories.patient_user(), factories.patient_user()
    first = actions.join_queue(first_user, factories.patient_of(first_user).pk, dept.pk, FOLLOW_UP)
    second = actions.join_queue(second_user, factories.patient_of(second_user).pk, dept.pk, FOLLOW_UP)
    first_cookie, second_cookie = world["cookie"](first_user), world["cookie"](second_user)

    async def scenario() -> None:
        error, code = await refused(f"/ws/queue/{second.pk}/", first_cookie)
        assert (error["code"], code) == ("consultation_not_found", 4403)
        error, code = await refused(f"/ws/queue/{second.pk}/", world["doctor_cookie"])
        assert code == 4403  # the doctor is not the patient's side

        waiting = await opened(f"/ws/queue/{second.pk}/", second_cookie)
        position = await waiting.receive_json_from(timeout=TIMEOUT)
        assert position == {
            "type": "position",
            "position": 2,
            "ahead": 1,
            "estimated_minutes": 2 * settings.NETHOSPITAL_QUEUE_MINUTES_PER_PATIENT,
            "status": "waiting",
            "room_url": f"/consultations/{second.pk}/",
        }
        picked = await db(actions.pick_next)(doctor.user)
        assert picked.pk == first.pk
        moved = await waiting.receive_json_from(timeout=TIMEOUT)
        assert (moved["position"], moved["ahead"], moved["status"]) == (1, 0, "waiting")
        picked = await db(actions.pick_next)(doctor.user)
        assert picked.pk == second.pk
        frames = [await waiting.receive_json_from(timeout=TIMEOUT) for _ in range(2)]  # queue and status events
        assert frames[-1]["status"] == "active" and frames[-1]["position"] == 0
        # Chat traffic in the consultation's group does not disturb the queue page.
        await db(actions.post_message)(doctor.user, second.pk, "d-1", "请进")
        assert await waiting.receive_nothing()
        await waiting.disconnect()

    run(scenario)


def test_the_workbench_refreshes_on_changes_and_needs_a_second_factor(world):
    doctor, dept = world["doctor"], world["doctor"].department
    newcomer = factories.patient_user()
    doctor_without_mfa = world["cookie"](doctor.user, mfa=False)

    async def scenario() -> None:
        error, code = await refused("/ws/workbench/", doctor_without_mfa)
        assert (error["code"], code) == ("mfa_required", 4403)
        error, code = await refused("/ws/workbench/", world["patient_cookie"])
        assert (error["code"], code) == ("permission_denied", 4403)
        error, code = await refused("/ws/workbench/", None)
        assert code == 4401

        bench = await opened("/ws/workbench/", world["doctor_cookie"])
        await db(actions.join_queue)(newcomer, (await db(factories.patient_of)(newcomer)).pk, dept.pk, FOLLOW_UP)
        assert await bench.receive_json_from(timeout=TIMEOUT) == {"type": "refresh"}
        assert await bench.receive_nothing()
        # A patient's message in one of the doctor's consultations refreshes it too.
        await db(actions.post_message)(world["user"], world["consultation"].pk, "p-9", "新消息")
        assert await bench.receive_json_from(timeout=TIMEOUT) == {"type": "refresh"}
        await bench.disconnect()

    run(scenario)


# --- the group commit behind the room ----------------------------------------------------------------
def test_messages_stored_together_are_checked_one_by_one_and_audited_each(world):
    first = world["consultation"]
    doctor = world["doctor"]
    other_user = factories.patient_user()
    second = actions.join_queue(other_user, factories.patient_of(other_user).pk, doctor.department_id, FOLLOW_UP)
    actions.pick_next(doctor.user)
    outsider = factories.patient_user()
    writes_before = AuditEntry.objects.filter(action="consultation.message.write").count()
    request = actions.MessageRequest

    results = actions.post_messages(
        [
            request(world["user"], first.pk, "a", "第一条", request_context=RequestContext("10.0.0.7", "websocket")),
            request(outsider, first.pk, "b", "我不是病人"),
            request(world["user"], first.pk, "c", "长" * (settings.NETHOSPITAL_MESSAGE_MAX_CHARS + 1)),
            request(other_user, second.pk, "d", "另一位病人"),
            request(world["user"], first.pk, "a", "第一条"),  # the same message again in the batch
            request(doctor.user, first.pk, "f", "医生回复"),
            request(world["user"], 999_999, "g", "没有这个问诊"),
        ]
    )

    codes = [r.code if isinstance(r, DomainError) else None for r in results]
    assert codes == [None, "consultation_not_found", "message_too_long", None, None, None, "consultation_not_found"]
    assert [(r.message.seq, r.created) for r in results if not isinstance(r, DomainError)] == [
        (2, True),
        (2, True),
        (2, False),
        (3, True),
    ]
    assert results[4].message.pk == results[0].message.pk
    assert message_rows(first.pk) == [(2, "a", "第一条"), (3, "f", "医生回复")]
    assert message_rows(second.pk) == [(2, "d", "另一位病人")]
    assert Consultation.objects.get(pk=first.pk).last_seq == 3
    writes = AuditEntry.objects.filter(action="consultation.message.write").order_by("sequence")
    assert [(e.actor_id, e.detail, e.client_address, e.channel) for e in writes[writes_before:]] == [
        (world["user"].pk, {"seq": 2}, "10.0.0.7", "websocket"),
        (other_user.pk, {"seq": 2}, None, "system"),
        (doctor.user.pk, {"seq": 3}, None, "system"),
    ]
    assert audit.verify_chain().is_intact  # appended under one lock of the head, still one chain
    # A resend of a stored message is answered without a write.
    (again,) = actions.post_messages([request(doctor.user, first.pk, "f", "医生回复")])
    assert not isinstance(again, DomainError) and (again.created, again.message.seq) == (False, 3)
    assert AuditEntry.objects.filter(action="consultation.message.write").count() == writes_before + 3


def test_the_doctor_of_a_batch_still_needs_the_second_factor_and_the_right_to_practise(world, city_hospital):
    from nethospital.accounts.models import User
    from nethospital.directory import actions as directory_actions
    from nethospital.directory.choices import VerificationStatus

    consultation, doctor = world["consultation"], world["doctor"]
    without_mfa = User.objects.get(pk=doctor.user.pk)  # a session that has not passed the second factor
    request = actions.MessageRequest

    first = actions.post_messages(
        [
            request(without_mfa, consultation.pk, "d-1", "没有两步验证"),
            request(world["user"], consultation.pk, "p-1", "好"),
        ]
    )

    assert isinstance(first[0], DomainError) and first[0].code == "mfa_required"
    assert not isinstance(first[1], DomainError) and first[1].message.seq == 2
    admin = factories.hospital_admin(city_hospital)
    directory_actions.change_verification(admin, doctor.pk, VerificationStatus.SUSPENDED, reason="停诊")
    (suspended,) = actions.post_messages([request(doctor.user, consultation.pk, "d-2", "停诊中")])
    assert isinstance(suspended, DomainError) and suspended.code == "practitioner_suspended"
    assert message_rows(consultation.pk) == [(2, "p-1", "好")]
