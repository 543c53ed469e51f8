"""Passwords: argon2id hashing (argon2-cffi) and the policy every new password meets."""

from __future__ import annotations

import gzip
import os
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.errors import AppError, ErrorCode
from app.settings import Environment, environment_name

# OWASP's floor for argon2id is m=19 MiB, t=2, p=1; we keep one step above it.
HASHER = PasswordHasher(time_cost=2, memory_cost=20 * 1024, parallelism=1)
# The test environment alone hashes with argon2's least work (8 KiB, one pass): its suite
# hashes thousands of passwords, each of which would otherwise cost tens of milliseconds.
TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

MIN_LENGTH = 8
# Long passphrases are welcome; the cap only stops a megabyte "password" from costing a hash.
MAX_LENGTH = 256
# The 20,000 most common passwords, as Django ships them (BSD licence).
_COMMON = Path(__file__).parent / "data" / "common-passwords.txt.gz"


@cache
def _common_passwords() -> frozenset[str]:
    with gzip.open(_COMMON, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip().lower() for line in lines if line.strip())


def check_policy(password: str, *, field: str = "password") -> None:
    """Refuses a password that is too short, absurdly long, or among the most common."""
    if len(password) < MIN_LENGTH:
        raise AppError(
            f"Use at least {MIN_LENGTH} characters.", code=ErrorCode.PASSWORD_TOO_WEAK, field=field
        )
    if len(password) > MAX_LENGTH:
        raise AppError(
            f"Use at most {MAX_LENGTH} characters.", code=ErrorCode.PASSWORD_TOO_WEAK, field=field
        )
    if password.lower() in _common_passwords():
        raise AppError(
            "This password is among the most common ones; choose another.",
            code=ErrorCode.PASSWORD_TOO_WEAK,
            field=field,
        )


def hasher() -> PasswordHasher:
    """TEST_HASHER when the service runs with PORTAL_ENV=test; HASHER everywhere else."""
    env = os.environ.get(environment_name("env"), "").strip().lower()
    return TEST_HASHER if env == Environment.TEST else HASHER


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Checks a password; with no hash it still spends the time of a check, so a missing
    account answers as slowly as a wrong password."""
    try:
        current = hasher()
        return current.verify(password_hash or _dummy_hash(current), password) and (
            password_hash is not None
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return hasher().check_needs_rehash(password_hash)


@cache
def _dummy_hash(current: PasswordHasher) -> str:
    return current.hash("a password nobody has")
