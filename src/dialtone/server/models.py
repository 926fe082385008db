"""Database tables: the registry of lines and the call history."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Line(Base):
    """A Twilio number, the Client identity that answers it, and the password to claim it."""

    __tablename__ = "lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone_number: Mapped[str] = mapped_column(String(16), unique=True)  # E.164
    client_name: Mapped[str] = mapped_column(String(256), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Call(Base):
    """One call leg as its status callbacks describe it: the history a phone user sees."""

    __tablename__ = "calls"

    call_sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    parent_call_sid: Mapped[str | None] = mapped_column(String(34), index=True)
    line_number: Mapped[str | None] = mapped_column(String(16), index=True)
    from_: Mapped[str] = mapped_column("from", String(300), default="")
    to: Mapped[str] = mapped_column(String(300), default="")
    direction: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(20))
    duration: Mapped[int | None] = mapped_column(Integer)
    # Why the server refused the call (an outgoing call to a premium-rate number…), if it did.
    refusal: Mapped[str | None] = mapped_column(String(200))
    # How its <Dial> ended (the action's DialCallStatus: completed, busy, no-answer, failed,
    # canceled) and how long the dialled party was connected (DialCallDuration), if we know.
    dial_status: Mapped[str | None] = mapped_column(String(20))
    dial_duration: Mapped[int | None] = mapped_column(Integer)
    last_sequence_number: Mapped[int] = mapped_column(Integer, default=-1)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CallEvent(Base):
    """One status callback delivery; the unique key makes redelivery a no-op."""

    __tablename__ = "call_events"
    __table_args__ = (
        UniqueConstraint("call_sid", "event_key", name="uq_call_events_call_sid_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(34), index=True)
    event_key: Mapped[str] = mapped_column(String(40))
    sequence_number: Mapped[int | None] = mapped_column(Integer)
    call_status: Mapped[str] = mapped_column(String(20))
    call_duration: Mapped[int | None] = mapped_column(Integer)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SignInAttempts(Base):
    """Failed sign-ins, shared by every server instance: one row per (number, client address)
    and one per number (`client_address` "*"). Rows expire so a spray of addresses cannot
    grow the table without bound."""

    __tablename__ = "sign_in_attempts"

    phone_number: Mapped[str] = mapped_column(String(16), primary_key=True)  # E.164
    client_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
