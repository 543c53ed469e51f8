"""Starting the service as an operator does: `portal serve` with several workers on a busy
machine (H7), and a start that fails on wrong settings without showing a secret (SECURITY.md
row 34)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from app.cli import main as portal_command
from app.db.migrate import upgrade
from app.settings import Environment, Settings, get_settings, problems_of
from tests.support import free_port

PORTAL = Path(sys.executable).with_name("portal")
# Loaded by every Python process that finds it on PYTHONPATH: here it holds each server
# worker back longer than uvicorn's own 5 s health check allows, as a busy machine does.
SLOW_WORKERS = """
import sys, time

if "--multiprocessing-fork" in sys.argv:
    time.sleep(7)
"""
STARTED = b"Application startup complete."


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ends the server and its workers: the session it leads holds them all."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'portal.db'}"
    upgrade(url)
    return url


def test_h7_two_workers_start_and_serve_when_each_takes_longer_than_five_seconds(
    tmp_path: Path, sqlite_url: str
) -> None:
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(SLOW_WORKERS)
    port = free_port()
    environment = {
        **os.environ,
        "PORTAL_ENV": "test",
        "DATABASE_URL": sqlite_url,
        "PORTAL_VAR_DIR": str(tmp_path),
        "PORTAL_MAIL_WORKER_IN_PROCESS": "false",
        "PYTHONPATH": str(slow),
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603  (the installed command, our own arguments)
            [str(PORTAL), "serve", "--port", str(port), "--workers", "2"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        healthy = False
        while time.monotonic() < deadline and process.poll() is None:
            try:
                healthy = (
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
                )
            except httpx.TransportError:
                healthy = False
            if healthy and log_path.read_bytes().count(STARTED) == 2:
                break
            time.sleep(0.5)
        log_text = log_path.read_text(errors="replace")
        assert healthy, log_text
        assert log_text.count(STARTED.decode()) == 2, log_text
        assert "died" not in log_text, log_text
    finally:
        stop(process)


SECRETS = {
    "PORTAL_SECRET_KEY": "short-but-secret-Kq7Zx",
    "PORTAL_SMTP_URL": "smtp://mailer:Hunter2-smtp-Pw9@mail.example:587",
    "PORTAL_STRIPE_SECRET_KEY": "sk_live_51Abc-stripe-Zz8Qv",
    "DATABASE_URL": "postgresql+asyncpg://portal:Db-pass-Wq4@db.example/portal",
    "PORTAL_REDIS_URL": "redis://:Redis-pass-Mn3@cache.example:6379/0",
}


def assert_no_secret(text: str) -> None:
    """Not a secret's value, nor its last four characters or more."""
    for name, value in SECRETS.items():
        secret = value.rsplit("@", 1)[0] if "@" in value else value
        for length in range(4, len(secret) + 1):
            assert secret[-length:] not in text, f"{name} shows in: {text}"


def test_sec34_a_failed_production_start_names_each_wrong_setting_and_shows_no_secret(
    tmp_path: Path,
) -> None:
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")},
        **SECRETS,
        "PORTAL_ENV": "production",
        "PORTAL_VAR_DIR": str(tmp_path),
    }
    finished = subprocess.run(  # noqa: S603  (the installed command, our own arguments)
        [str(PORTAL), "serve", "--port", str(free_port())],
        env=environment,
        capture_output=True,
        timeout=120,
        check=False,
    )
    output = (finished.stdout + finished.stderr).decode()
    assert finished.returncode == 2, output
    assert output.splitlines() == [
        "portal: PORTAL_SECRET_KEY: must be set to a random value of at least 32 characters"
        " in production",
        "portal: PORTAL_STRIPE_PUBLISHABLE_KEY: must be set with the other Stripe settings"
        " (PORTAL_STRIPE_SECRET_KEY, PORTAL_STRIPE_WEBHOOK_SECRET)",
        "portal: PORTAL_STRIPE_WEBHOOK_SECRET: must be set with the other Stripe settings"
        " (PORTAL_STRIPE_SECRET_KEY, PORTAL_STRIPE_PUBLISHABLE_KEY)",
    ]
    assert_no_secret(output)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """The process environment as a production start would see it, with every secret set."""
    for key in os.environ:
        if key.startswith("PORTAL_"):
            monkeypatch.delenv(key)
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("PORTAL_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("PORTAL_STRIPE_PUBLISHABLE_KEY", "pk_live_51Abc")
    monkeypatch.setenv("PORTAL_STRIPE_WEBHOOK_SECRET", "whsec_Hook-secret-Tt5")
    monkeypatch.setenv("PORTAL_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("PORTAL_MAX_BODY_BYTES", "lots", "Input should be a valid integer"),
        ("PORTAL_ALLOWED_ORIGINS", "https://app.example", "is not valid JSON"),
        ("PORTAL_TRUSTED_PROXIES", "*", "must list the IP addresses or networks"),
        ("PORTAL_SMTP_URL", "mailer:Hunter2-smtp-Pw9@mail.example", "must start with smtp://"),
        ("PORTAL_ENV", "staging", "Input should be 'development', 'test' or 'production'"),
    ],
)
def test_sec34_every_kind_of_wrong_setting_gets_one_line_without_any_value(
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    problem: str,
) -> None:
    environment.setenv(name, value)
    with pytest.raises(SystemExit) as exit_:
        portal_command(["serve"])
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"portal: {name}: {problem}"), lines
    assert value not in captured.err + captured.out
    assert_no_secret(captured.err + captured.out)


def test_sec34_settings_and_their_errors_never_show_a_secret() -> None:
    settings = Settings(
        env=Environment.PRODUCTION,
        secret_key="k" * 32 + "-tail-Kq7Zx",
        database_url=SECRETS["DATABASE_URL"],
        redis_url=SECRETS["PORTAL_REDIS_URL"],
        smtp_url=SECRETS["PORTAL_SMTP_URL"],
    )
    assert_no_secret(f"{settings!r} {settings}")
    assert "Kq7Zx" not in repr(settings)
    with pytest.raises(ValidationError) as refused:
        Settings(
            env=Environment.PRODUCTION,
            secret_key="short-but-secret-Kq7Zx",
            smtp_url=SECRETS["PORTAL_SMTP_URL"],
            stripe_secret_key=SECRETS["PORTAL_STRIPE_SECRET_KEY"],
        )
    assert_no_secret(f"{refused.value} {refused.value!r} {refused.value.errors()!r}")
    assert problems_of(refused.value)[0] == (
        "PORTAL_SECRET_KEY: must be set to a random value of at least 32 characters in production"
    )
