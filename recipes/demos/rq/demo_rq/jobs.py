"""The demo's jobs, registered with the toolkit's `Jobs`: only registered functions run, every
enqueue carries the retry policy and the timeouts, and the schedule fires each slot once.

`demo` records its effect with its own idempotent write; `send_report` and `charge` go through the
toolkit's idempotency helper (with the SQLAlchemy store: the marker in the same session
transaction as the writes), which makes their effects happen once however often they run."""

from __future__ import annotations

import os
import time

from demo_common import psp
from demo_common.work import fail_if_asked, interruptible_sleep
from rq import get_current_job
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from demo_rq.db import Attempt, Digest, Effect, Order, Session, Tick
from taskq.idempotency import Idempotency
from taskq.idempotency.sqlalchemy import SQLAlchemyStore
from taskq.rq import Jobs
from taskq.schedule import Entry, Every

jobs = Jobs(queues=["default"])
idempotency = Idempotency(SQLAlchemyStore(Session), lease_s=jobs.settings.lease_s)


def record_attempt(key: str) -> int:
    """Record that an execution started; return its number for this key, from 1."""
    with Session.begin() as session:
        session.add(Attempt(key=key, job_id=get_current_job().id))
        session.flush()
        return session.scalar(select(func.count()).select_from(Attempt).where(Attempt.key == key))


def record_effect(session, key: str) -> None:
    session.execute(insert(Effect).values(key=key, job_id=get_current_job().id).on_conflict_do_nothing())


@jobs.job
def demo(key: str, sleep_s: float = 0.5, fail_times: int = 0) -> None:
    fail_if_asked(record_attempt(key), fail_times, key)
    interruptible_sleep(sleep_s)
    with Session.begin() as session:
        record_effect(session, key)


@jobs.job
def send_report(user_id: int, key: str) -> None:
    record_attempt(key)
    with idempotency.run(key, args={"user_id": user_id}) as run:
        if run.done:
            return
        time.sleep(0.05)  # stands in for rendering and mailing user_id's report
        with run.transaction() as session:
            record_effect(session, key)


@jobs.job
def charge(key: str, amount_cents: int, sleep_s: float = 0.5, fail_times: int = 0) -> dict:
    attempt = record_attempt(key)
    with idempotency.run(key, args={"amount_cents": amount_cents}) as run:
        if run.done:
            return run.result
        payment = psp.charge(amount_cents, idempotency_key=run.external_key())
        fail_if_asked(attempt, fail_times, key)
        interruptible_sleep(sleep_s)
        with run.transaction() as session:
            session.add(Order(key=key, charge_id=payment["id"], amount_cents=amount_cents))
            run.result = {"charge": payment["id"]}
        return run.result


@jobs.job
def tick(slot: int) -> None:
    # Counts every run rather than ignoring repeats, so that a slot fired twice shows up.
    upsert = insert(Tick).values(slot=slot, runs=1)
    with Session.begin() as session:
        session.execute(
            upsert.on_conflict_do_update(index_elements=[Tick.slot], set_={"runs": Tick.runs + 1})
        )


@jobs.job
def digest() -> None:
    """Stands in for a periodic job of the app's own (a digest mail, a cleanup): once a minute."""
    with Session.begin() as session:
        session.add(Digest())


jobs.add_schedule(
    Entry("tick", Every(int(os.environ.get("TICK_INTERVAL_S", "60"))), tick, slot_kwarg="slot"),
    Entry("digest", "* * * * *", digest),
)
