"""The demo's database: a SQLAlchemy engine and sessions from DATABASE_URL, and its tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, Text, create_engine, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from taskq.dsn import sqlalchemy_url
from taskq.settings import RQSettings

engine = create_engine(
    sqlalchemy_url(RQSettings.from_env().require_database_url(), "psycopg"), pool_pre_ping=True
)
Session = sessionmaker(engine)


class Base(DeclarativeBase):
    pass


class Attempt(Base):
    """Every execution of a job that started, across retries and redeliveries."""

    __tablename__ = "attempts"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(Text, index=True)
    job_id: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )


class Effect(Base):
    """A `demo` job's effect, written idempotently: one row per key."""

    __tablename__ = "effects"
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    job_id: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )


class Tick(Base):
    """Scheduler slots that ran, and how many times each did (more than once would be a bug)."""

    __tablename__ = "ticks"
    slot: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    runs: Mapped[int] = mapped_column(Integer)
    last_run_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )


class Order(Base):
    """What a `charge` leaves; no unique key on purpose: an effect that happened twice shows."""

    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(Text, index=True)
    charge_id: Mapped[str] = mapped_column(Text)
    amount_cents: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )


class Digest(Base):
    """A run of the once-a-minute periodic job."""

    __tablename__ = "digests"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.clock_timestamp())
