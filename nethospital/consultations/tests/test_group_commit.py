"""The chat's group commit: the batcher's linger (with a fake clock), events sent from the event loop,
the hot queries compiled once and the rows inserted in one statement (docs/benchmarks.md, chat)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest
from django.db import connection, transaction

from nethospital.consultations import actions, consumers, events, prepared
from nethospital.consultations.models import Consultation, Message, Participant
from nethospital.consultations.tests.test_actions import FOLLOW_UP
from nethospital.core import audit
from nethospital.core.models import AuditEntry
from nethospital.testing import factories


class FakeTime:
    """A clock that moves only when the batcher sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []
        self.during_sleep: list[Any] = []  # callables run while the batcher lingers

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds
        for action in self.during_sleep:
            action()
        self.during_sleep.clear()
        await asyncio.sleep(0)  # let what was started meanwhile run (it joins the waiting requests)


def batcher_with(time: FakeTime, batches: list[list[int]]) -> consumers.Batcher[int, int]:
    def store(requests: list[int]) -> list[int]:
        batches.append(list(requests))
        return [request * 10 for request in requests]

    batcher: consumers.Batcher[int, int] = consumers.Batcher(
        store, linger=0.02, busy_window=0.05, clock=time.clock, sleep=time.sleep
    )
    return batcher


@pytest.fixture
def inline_database(monkeypatch):
    async def inline(function, *args):  # the store runs on the loop: no database here
        return function(*args)

    monkeypatch.setattr(consumers, "_in_database", inline)


def test_a_lone_request_in_a_quiet_process_is_stored_at_once(inline_database):
    time, batches = FakeTime(), cast(list[list[int]], [])
    batcher = batcher_with(time, batches)

    async def scenario() -> list[int]:
        first = await batcher.submit(1)
        time.now += 1.0  # a second later: the process is quiet again
        second = await batcher.submit(2)
        return [first, second]

    assert asyncio.run(scenario()) == [10, 20]
    assert batches == [[1], [2]]
    assert time.sleeps == []


def test_under_load_a_batch_lingers_so_that_later_requests_join_it(inline_database):
    time, batches = FakeTime(), cast(list[list[int]], [])
    batcher = batcher_with(time, batches)

    async def scenario() -> list[int]:
        await batcher.submit(1)  # stored at once; the process is now busy for 0.05 s
        time.now += 0.005
        loop = asyncio.get_running_loop()
        late: list[asyncio.Future[int]] = []
        time.during_sleep.append(lambda: late.append(loop.create_task(batcher.submit(3))))
        result = await batcher.submit(2)
        return [result, *[await future for future in late]]

    assert asyncio.run(scenario()) == [20, 30]
    assert batches == [[1], [2, 3]]
    assert time.sleeps == [0.02]  # the whole linger: request 2 had not waited yet


def test_time_spent_waiting_for_the_batch_in_flight_counts_towards_the_linger(inline_database):
    time, batches = FakeTime(), cast(list[list[int]], [])
    batcher = batcher_with(time, batches)

    async def scenario() -> None:
        await batcher.submit(1)
        loop = asyncio.get_running_loop()
        # Request 2 arrived 0.015 s ago (it waited for a batch in flight): 0.005 s of linger are left.
        request = loop.create_task(batcher.submit(2))
        await asyncio.sleep(0)
        time.now += 0.015
        assert await request == 20

    asyncio.run(scenario())
    assert time.sleeps == [0.005]
    assert batches == [[1], [2]]


def test_a_full_batch_does_not_linger(inline_database):
    time, batches = FakeTime(), cast(list[list[int]], [])
    batcher = batcher_with(time, batches)
    batcher.MAX_BATCH = 3

    async def scenario() -> list[int]:
        await batcher.submit(0)
        return list(await asyncio.gather(*(batcher.submit(n) for n in (1, 2, 3, 4))))

    assert asyncio.run(scenario()) == [10, 20, 30, 40]
    assert batches[:2] == [[0], [1, 2, 3]]  # the first three at once, without waiting
    assert time.sleeps == [0.02]  # only the last one, alone, lingered


def test_the_events_of_a_batch_are_sent_from_the_loop_after_its_commit(inline_database, monkeypatch):
    sent: list[tuple[str, dict[str, Any]]] = []

    class Layer:
        async def group_send(self, group: str, message: dict[str, Any]) -> None:
            sent.append((group, message))

    monkeypatch.setattr(events, "get_channel_layer", lambda: Layer())

    def store(requests: list[int]) -> list[int]:
        for request in requests:
            events.send_now(events.consultation_group(request), "chat.read", {"seq": request})
            assert sent == []  # kept, not sent from here
        return requests

    async def scenario() -> int:
        batcher: consumers.Batcher[int, int] = consumers.Batcher(store, linger=0)
        result = await batcher.submit(7)
        for _turn in range(3):
            await asyncio.sleep(0)
        return result

    assert asyncio.run(scenario()) == 7
    assert sent == [("consult.7", {"type": "chat.read", "payload": {"seq": 7}})]


@pytest.mark.django_db(transaction=True)
def test_collected_events_are_kept_only_when_their_transaction_commits():
    with events.collected() as kept:
        with transaction.atomic():
            events.publish("consult.1", "chat.read", {"seq": 1})
        try:
            with transaction.atomic():
                events.publish("consult.2", "chat.read", {"seq": 2})
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
    assert kept == [("consult.1", {"type": "chat.read", "payload": {"seq": 1}})]


@pytest.fixture
def two_consultations(city_hospital, internet_hospital):
    admin = factories.hospital_admin(city_hospital)
    doctor = factories.doctor(city_hospital, admin=admin)
    doctor.user.is_mfa_verified = True
    made = []
    for _index in range(2):
        user = factories.patient_user()
        made.append((user, actions.join_queue(user, factories.patient_of(user).pk, doctor.department_id, FOLLOW_UP)))
        actions.pick_next(doctor.user)
    return doctor, made


@pytest.mark.django_db
def test_a_prepared_query_gives_what_the_orm_gives(two_consultations):
    _doctor, made = two_consultations
    ids = sorted(consultation.pk for _user, consultation in made)
    query = prepared.Prepared(
        lambda ids: (
            Consultation.objects.select_related("practitioner", "practitioner__user").filter(pk__in=ids).order_by("pk")
        ),
        pads=(prepared.no_id,),
    )

    first, second = query(ids), query(ids)  # compiled by the first call, reused by the second

    expected = list(
        Consultation.objects.select_related("practitioner", "practitioner__user").filter(pk__in=ids).order_by("pk")
    )
    assert query.compiled_shapes() == 1
    for got in (first, second):
        assert [c.pk for c in got] == ids
        assert [(c.status, c.last_seq, c.created_at, c.patient_id) for c in got] == [
            (c.status, c.last_seq, c.created_at, c.patient_id) for c in expected
        ]
        # select_related: the doctor and the doctor's account come with it, no query
        assert [c.practitioner.user.email for c in got] == [c.practitioner.user.email for c in expected]
        assert all(not c._state.adding and c._state.db == "default" for c in got)
    rows = prepared.Prepared(
        lambda ids: Consultation.objects.filter(pk__in=ids).order_by("pk").values_list("pk", "last_seq"),
        pads=(prepared.no_id,),
    )
    assert rows(ids) == rows(ids) == [(c.pk, c.last_seq) for c in expected]


@pytest.mark.django_db
def test_a_prepared_query_with_repeated_ids_is_not_reused_wrongly(two_consultations):
    _doctor, made = two_consultations
    one = made[0][1].pk
    query = prepared.Prepared(
        lambda ids: Consultation.objects.filter(pk__in=ids).order_by("pk"), pads=(prepared.no_id,)
    )

    assert [c.pk for c in query([one, one])] == [one]  # the ORM drops the repeat: not compiled
    assert query.compiled_shapes() == 0
    assert [c.pk for c in query([one, one])] == [one]
    assert query([]) == []


@pytest.mark.django_db
def test_a_prepared_query_has_one_shape_per_power_of_two_and_its_pads_match_nothing(two_consultations):
    _doctor, made = two_consultations
    ids = sorted(consultation.pk for _user, consultation in made)
    missing = max(ids) + 1000
    query = prepared.Prepared(
        lambda ids, users: (
            Participant.objects.filter(consultation_id__in=ids, user_id__in=users)
            .order_by("consultation_id", "user_id")
            .values_list("consultation_id", "user_id")
        ),
        pads=(prepared.no_id, prepared.no_id),
    )
    users = sorted({*Participant.objects.filter(consultation_id__in=ids).values_list("user_id", flat=True), 0})

    def orm(ids: list[int], users: list[int]) -> list[tuple[int, int]]:
        return list(
            Participant.objects.filter(consultation_id__in=ids, user_id__in=users)
            .order_by("consultation_id", "user_id")
            .values_list("consultation_id", "user_id")
        )

    for asked in ([ids[0]], ids, [*ids, missing], [*ids, missing, missing + 1], [*ids, *range(missing, missing + 3)]):
        assert query(asked, users) == orm(asked, users) != []
    # 1, 2, 3, 4 and 5 ids, each against the same users: four shapes (1, 2, 4 and 8 ids, padded)
    assert query.compiled_shapes() == 4
    assert prepared.padded([7, 8, 9], prepared.no_id) == [7, 8, 9, -1]
    assert [len(prepared.padded(list(range(n)), prepared.no_id)) for n in (1, 2, 3, 5, 8, 9)] == [1, 2, 4, 8, 8, 16]


@pytest.mark.django_db(transaction=True)
def test_a_shape_compiled_in_one_thread_serves_the_others(two_consultations):
    _doctor, made = two_consultations
    ids = sorted(consultation.pk for _user, consultation in made)
    query = prepared.Prepared(
        lambda ids: Consultation.objects.select_related("practitioner").filter(pk__in=ids).order_by("pk"),
        pads=(prepared.no_id,),
    )
    assert [c.pk for c in query(ids)] == ids
    compiled = next(iter(query.cache.values()))

    def elsewhere() -> list[tuple[int, str]]:
        try:
            return [(c.pk, c.practitioner.title) for c in query(ids)]
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda _i: elsewhere(), range(4)))
    expected = [(c.pk, c.practitioner.title) for c in Consultation.objects.filter(pk__in=ids).order_by("pk")]
    assert got == [expected] * 4
    assert query.compiled_shapes() == 1 and next(iter(query.cache.values())) is compiled


@pytest.mark.django_db
def test_a_batch_of_messages_is_inserted_and_audited_with_ids_and_one_chain(two_consultations):
    doctor, made = two_consultations
    before = AuditEntry.objects.count()
    requests = [actions.MessageRequest(user, consultation.pk, "c-1", "你好") for user, consultation in made]
    requests.append(actions.MessageRequest(doctor.user, made[0][1].pk, "d-1", "请讲"))

    results = actions.post_messages(requests)

    stored = [result.message for result in results if isinstance(result, actions.Posted)]
    assert len(stored) == 3
    assert [Message.objects.get(pk=message.pk).body for message in stored] == ["你好", "你好", "请讲"]
    entries = AuditEntry.objects.order_by("sequence")[before:]
    assert [(entry.actor_id, entry.detail) for entry in entries] == [
        (made[0][0].pk, {"seq": 2}),
        (made[1][0].pk, {"seq": 2}),
        (doctor.user.pk, {"seq": 3}),
    ]
    assert audit.verify_chain().is_intact
    appended = audit.record_many([audit.Pending(doctor.user, "consultation.test", made[0][1])])
    assert appended[0].pk == AuditEntry.objects.get(sequence=appended[0].sequence).pk
