"""The sign-in throttle kept in the database: its counts, their expiry, and two server
processes sharing them on one PostgreSQL."""

import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from dialtone.server.db import Database
from dialtone.server.models import SignInAttempts
from dialtone.server.registry import LineRegistry
from dialtone.server.throttle import ANY, Limits, SignInThrottle, client_key
from tests.conftest import SEED_CLIENT, SEED_NUMBER, SEED_PASSWORD, _postgres_schema_url
from tests.serve_process import dialtone_serve

TOKEN = "/twilio/retrieve_capability_token"
STRANGER = "198.51.100.7"
OWNER = "203.0.113.5"


class Clock:
    def __init__(self):
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


def _rows(db):
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(SignInAttempts))


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),  # one subscriber's /64
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        (None, "unknown"),
        ("x" * 300, "x" * 64),
    ],
)
def test_client_key(host, key):
    assert client_key(host) == key


def test_the_delay_doubles_after_the_free_failures_and_is_capped():
    limits = Limits(free_failures=3, max_delay=10)
    assert [limits.delay(n) for n in range(1, 9)] == [0, 0, 1, 2, 4, 8, 10, 10]


def test_an_address_is_forgotten_after_a_quiet_day(db):
    clock = Clock()
    throttle = SignInThrottle(db, Limits(free_failures=1, max_delay=60), clock=clock)
    for _ in range(5):
        throttle.failed(SEED_NUMBER, STRANGER)
    assert throttle.retry_after(SEED_NUMBER, STRANGER) == 16
    clock.advance(hours=23)
    assert throttle.retry_after(SEED_NUMBER, STRANGER) == 0
    throttle.failed(SEED_NUMBER, STRANGER)  # within the day: the run goes on
    assert throttle.retry_after(SEED_NUMBER, STRANGER) == 32
    clock.advance(days=1, seconds=1)
    throttle.failed(SEED_NUMBER, STRANGER)  # after a quiet day: counted from one again
    assert throttle.retry_after(SEED_NUMBER, STRANGER) == 1


def test_the_ceiling_window_starts_again_after_an_hour(db):
    clock = Clock()
    throttle = SignInThrottle(db, Limits(ceiling=3), clock=clock)
    for n in range(3):
        throttle.failed(SEED_NUMBER, f"198.51.100.{n}")
        clock.advance(minutes=10)
    assert throttle.retry_after(SEED_NUMBER, OWNER) == 30 * 60
    clock.advance(minutes=30)
    assert throttle.retry_after(SEED_NUMBER, OWNER) == 0
    throttle.failed(SEED_NUMBER, "198.51.100.9")  # a new window: one failure in it
    assert throttle.retry_after(SEED_NUMBER, OWNER) == 0


def test_a_spray_of_addresses_expires_and_is_pruned(db):
    clock = Clock()
    throttle = SignInThrottle(db, Limits(prune_every=0), clock=clock)
    throttle.succeeded(SEED_NUMBER, OWNER)
    for n in range(200):
        throttle.failed(f"+8150{n:08d}", f"10.0.{n // 250}.{n % 250}")
    assert _rows(db) == 1 + 200 * 3  # per (number, address), per number, per address
    clock.advance(days=1, seconds=1)
    throttle.failed(SEED_NUMBER, STRANGER)  # a failure prunes what has expired
    with db.session() as session:
        left = set(
            session.execute(select(SignInAttempts.phone_number, SignInAttempts.client_address))
        )
    # The owner's success is remembered (it lets them past the ceiling) and the new failure.
    assert left == {
        (SEED_NUMBER, OWNER),
        (SEED_NUMBER, STRANGER),
        (SEED_NUMBER, ANY),
        (ANY, STRANGER),
    }
    clock.advance(days=31)
    assert throttle.prune() == 4
    assert _rows(db) == 0


@pytest.fixture
def postgres_url(request):
    yield from _postgres_schema_url(request)


@pytest.mark.postgres
def test_two_server_processes_count_failures_together(tmp_path, postgres_url):
    db = Database(postgres_url)
    db.upgrade()
    LineRegistry(db, "JP").add(SEED_NUMBER, SEED_CLIENT, SEED_PASSWORD)
    # Both servers sit behind a proxy on loopback that names the client in X-Forwarded-For.
    env = {"DIALTONE_TRUSTED_PROXIES": "127.0.0.1"}
    with (
        dialtone_serve(tmp_path, postgres_url, **env) as (_a, base_a),
        dialtone_serve(tmp_path, postgres_url, **env) as (_b, base_b),
        httpx.Client(timeout=30) as http,
    ):

        def sign_in(base, password, address):
            return http.post(
                base + TOKEN,
                json={"twilioPhoneNumber": SEED_NUMBER, "password": password},
                headers={"X-Forwarded-For": address},
            )

        # A stranger's guesses, alternating between the servers. Counted per process, the
        # first refusal would come after 5 failures on each (10); shared, after 5 in all.
        answers = []
        for attempt in range(7):
            answers.append(sign_in((base_a, base_b)[attempt % 2], "wrong password", STRANGER))
            if answers[-1].status_code == 429:
                break
        failures = sum(1 for answer in answers if answer.status_code == 401)
        assert answers[-1].status_code == 429, [a.status_code for a in answers]
        assert failures >= 5
        with db.session() as session:
            counted = session.get(SignInAttempts, (SEED_NUMBER, STRANGER)).failures
        assert counted == failures
        held = sign_in(base_b, SEED_PASSWORD, STRANGER)
        assert held.status_code == 429  # even with the right password: wait first

        # The stranger keeps hammering both servers while the owner signs in elsewhere.
        stop = threading.Event()
        hammered = []

        def hammer():
            with httpx.Client(timeout=30) as own:
                while not stop.is_set():
                    for base in (base_a, base_b):
                        hammered.append(
                            own.post(
                                base + TOKEN,
                                json={"twilioPhoneNumber": SEED_NUMBER, "password": "guess"},
                                headers={"X-Forwarded-For": STRANGER},
                            ).status_code
                        )

        thread = threading.Thread(target=hammer)
        thread.start()
        try:
            for base in (base_a, base_b, base_a, base_b):
                owner = sign_in(base, SEED_PASSWORD, OWNER)
                assert owner.status_code == 200, owner.text
                assert owner.json()["identity"] == SEED_CLIENT
        finally:
            stop.set()
            thread.join(30)
        assert hammered and set(hammered) <= {401, 429}
    db.dispose()
