"""Throttling of failed sign-ins, shared by every server instance through the database.

Three counts, each a row of `sign_in_attempts`:

- per (number, client address): the first few failures are free (typos), then each one
  makes that address wait twice as long as the last, up to `max_delay`. A stranger's
  guesses slow to a trickle without touching anyone else's sign-in.
- per number (address "*") and per address across all numbers (number "*"): a ceiling of
  failures per hour, against guessing from many addresses and spraying many numbers. It
  is high, so one stranger cannot reach it; and an address that signed in to that number
  recently is not held by it, so the owner is not locked out by someone else's guesses.

The hot path is one primary-key read before the (slow) password check; writes happen only
on a failure or a success. Rows carry an expiry and are pruned, so a spray of addresses
cannot grow the table without bound.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dialtone import logs
from dialtone.server.db import Database
from dialtone.server.models import SignInAttempts, utcnow

log = logging.getLogger("dialtone.server.throttle")

ANY = "*"  # the per-number row's address, the per-address row's number


@dataclass(frozen=True)
class Limits:
    free_failures: int = 5  # per (number, address) before any delay
    max_delay: float = 900.0  # seconds; 1, 2, 4, … up to this
    forget_after: timedelta = timedelta(days=1)  # an address's failures, after a quiet day
    ceiling: int = 100  # failures per number, and per address, in one `window`
    window: timedelta = timedelta(hours=1)
    trust_success_for: timedelta = timedelta(days=30)  # skips the ceilings for that number
    prune_every: float = 60.0  # seconds between deletions of expired rows (per process)

    def delay(self, failures: int) -> float:
        """Seconds an address waits after its `failures`-th failure in a row."""
        if failures < self.free_failures:
            return 0.0
        return min(2.0 ** (failures - self.free_failures), self.max_delay)


def client_key(host: str | None) -> str:
    """The address a client is counted under: IPv6 clients by their /64 (one subscriber
    usually holds a whole /64), IPv4-mapped IPv6 as IPv4."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return (host or "unknown")[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class SignInThrottle:
    def __init__(
        self,
        db: Database,
        limits: Limits | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.limits = limits or Limits()
        self._clock = clock
        self._next_prune = 0.0
        self._prune_lock = threading.Lock()

    def retry_after(self, number: str, address: str) -> int:
        """Seconds before `address` may try `number` again; 0 when it may try now."""
        limits, now = self.limits, self._clock()
        with self.db.session() as session:
            rows = {
                (row.phone_number, row.client_address): row
                for row in session.scalars(
                    select(SignInAttempts).where(
                        tuple_(SignInAttempts.phone_number, SignInAttempts.client_address).in_(
                            [(number, address), (number, ANY), (ANY, address)]
                        )
                    )
                )
            }
        wait = 0.0
        own = rows.get((number, address))
        recent = now - limits.forget_after
        if own is not None and own.last_failure_at is not None and own.last_failure_at > recent:
            until = own.last_failure_at + timedelta(seconds=limits.delay(own.failures))
            wait = (until - now).total_seconds()
        trusted = (
            own is not None
            and own.last_success_at is not None
            and own.last_success_at > now - limits.trust_success_for
        )
        if not trusted:
            for key in ((number, ANY), (ANY, address)):
                row = rows.get(key)
                if row is not None and row.failures >= limits.ceiling:
                    until = row.window_started_at + limits.window
                    wait = max(wait, (until - now).total_seconds())
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, number: str, address: str) -> None:
        limits, now = self.limits, self._clock()
        table = SignInAttempts.__table__
        c = table.c
        with self.db.session() as session:
            # In a row of its own: a failure after a quiet `forget_after` starts again at one.
            forgotten = or_(
                c.last_failure_at.is_(None), c.last_failure_at <= now - limits.forget_after
            )
            keep = now + limits.forget_after
            self._upsert(
                session,
                {
                    "phone_number": number,
                    "client_address": address,
                    "failures": 1,
                    "window_started_at": now,
                    "last_failure_at": now,
                    "expires_at": keep,
                },
                {
                    "failures": case((forgotten, 1), else_=c.failures + 1),
                    "last_failure_at": now,
                    "expires_at": case((c.expires_at > keep, c.expires_at), else_=keep),
                },
            )
            # The ceilings: fixed windows, begun by the first failure after the last ended.
            ended = c.window_started_at <= now - limits.window
            for row_number, row_address in ((number, ANY), (ANY, address)):
                self._upsert(
                    session,
                    {
                        "phone_number": row_number,
                        "client_address": row_address,
                        "failures": 1,
                        "window_started_at": now,
                        "last_failure_at": now,
                        "expires_at": now + limits.window,
                    },
                    {
                        "failures": case((ended, 1), else_=c.failures + 1),
                        "window_started_at": case((ended, now), else_=c.window_started_at),
                        "last_failure_at": now,
                        "expires_at": case((ended, now + limits.window), else_=c.expires_at),
                    },
                )
        self._prune(now)

    def succeeded(self, number: str, address: str) -> None:
        """The address may sign in without delay, and passes the ceilings for a while."""
        limits, now = self.limits, self._clock()
        keep = now + limits.trust_success_for
        with self.db.session() as session:
            self._upsert(
                session,
                {
                    "phone_number": number,
                    "client_address": address,
                    "failures": 0,
                    "window_started_at": now,
                    "last_success_at": now,
                    "expires_at": keep,
                },
                {"failures": 0, "last_success_at": now, "expires_at": keep},
            )

    def prune(self, now: datetime | None = None) -> int:
        """Delete expired rows; the number deleted."""
        with self.db.session() as session:
            result = session.execute(
                delete(SignInAttempts).where(SignInAttempts.expires_at < (now or self._clock()))
            )
        return result.rowcount or 0

    def _prune(self, now: datetime) -> None:
        # At most once a minute per process, on the failure path only; never fails a sign-in.
        if time.monotonic() < self._next_prune or not self._prune_lock.acquire(blocking=False):
            return
        try:
            self._next_prune = time.monotonic() + self.limits.prune_every
            deleted = self.prune(now)
            if deleted:
                logs.event(log, "sign_in_attempts_pruned", deleted=deleted)
        except Exception as exc:
            logs.event(
                log,
                "sign_in_attempts_prune_failed",
                level=logging.WARNING,
                error=type(exc).__name__,
            )
        finally:
            self._prune_lock.release()

    def _upsert(self, session: Session, values: dict, update: dict) -> None:
        """INSERT … ON CONFLICT DO UPDATE on the (number, address) key: atomic across
        instances on both backends."""
        table = SignInAttempts.__table__
        insert = postgresql.insert if self.db.engine.dialect.name == "postgresql" else sqlite.insert
        session.execute(
            insert(table)
            .values(**values)
            .on_conflict_do_update(
                index_elements=[table.c.phone_number, table.c.client_address], set_=update
            )
        )
