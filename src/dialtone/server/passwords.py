"""Line passwords: Argon2id hashes (slow, salted), never stored or logged in the clear."""

from __future__ import annotations

import re
from functools import lru_cache

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8
MAX_LENGTH = 1024  # hashing cost grows with length; refuse absurd inputs
MAX_HASH_LENGTH = 255  # the lines.password_hash column

# OWASP's Password Storage Cheat Sheet: Argon2id with one of these (memory KiB, passes), all
# equally strong. The server hashes above them (argon2-cffi's RFC 9106 profile); a hash made
# elsewhere (`dialtone lines import` with a password_hash column) must meet one of them.
OWASP_MINIMUMS = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))
MIN_SALT_BYTES = 16  # RFC 9106 §3.1
MIN_TAG_BYTES = 16
_B64 = re.compile(r"^[A-Za-z0-9+/]+$")  # PHC strings: standard base64 without padding

_hasher = PasswordHasher()


class WeakPassword(ValueError):
    pass


class UnacceptableHash(ValueError):
    """A ready-made password hash that is not Argon2id at OWASP's strength; the message says why."""


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password must have at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_policy(password)
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return _hasher.hash("decoy password used to keep timing uniform")


def verify(password_hash: str | None, password: str) -> bool:
    """True when `password` matches. With no hash (unknown line) the same work is done,
    so response time does not reveal which numbers exist."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return (
            _hasher.verify(password_hash or _decoy_hash(), password) and password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


def check_hash(password_hash: str) -> None:
    """Accept a PHC-format Argon2id hash at or above OWASP's parameters, or raise
    UnacceptableHash. Parsing only: no hashing, so a million are checked in seconds."""
    if len(password_hash) > MAX_HASH_LENGTH:
        raise UnacceptableHash(f"the password hash is longer than {MAX_HASH_LENGTH} characters")
    try:
        params = extract_parameters(password_hash)
    except InvalidHashError:
        raise UnacceptableHash(
            "the password hash is not in PHC format ($argon2id$v=19$m=…,t=…,p=…$salt$hash)"
        ) from None
    salt, tag = password_hash.split("$")[-2:]
    if not (_B64.match(salt) and _B64.match(tag)) or len(salt) % 4 == 1 or len(tag) % 4 == 1:
        raise UnacceptableHash("the password hash's salt or hash is not valid base64")
    if params.type is not Type.ID:
        raise UnacceptableHash(
            f"the password hash is argon2{params.type.name.lower()}, not argon2id"
        )
    if params.version != 19:
        raise UnacceptableHash(f"the password hash is Argon2 version {params.version}, not 19")
    if params.parallelism < 1 or not any(
        params.memory_cost >= memory and params.time_cost >= passes
        for memory, passes in OWASP_MINIMUMS
    ):
        raise UnacceptableHash(
            f"the password hash's parameters (m={params.memory_cost},t={params.time_cost},"
            f"p={params.parallelism}) are below OWASP's minimum for Argon2id "
            "(e.g. m=19456,t=2,p=1)"
        )
    if params.salt_len < MIN_SALT_BYTES or params.hash_len < MIN_TAG_BYTES:
        raise UnacceptableHash(
            f"the password hash's salt and hash must have at least {MIN_SALT_BYTES} and "
            f"{MIN_TAG_BYTES} bytes"
        )


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
