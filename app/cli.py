"""`portal`: migrate, seed the demo, export the SDL, serve, send mail and retry what failed."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import sys
import tempfile
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import uvicorn

# Each server worker is a new process that imports this module before it can answer the
# supervisor's health check: each command imports what it needs only when it runs.
if TYPE_CHECKING:
    from app.db.demo import DemoSignIn
    from app.payments import RecoveryReport
    from app.settings import Settings

# prometheus-client's multiprocess mode: where the workers of one server keep their counts.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

# uvicorn's 5 s killed every worker of a busy 2-core machine before it served; a worker
# answers from a thread of its own, so only a frozen interpreter misses 60 s.
WORKER_HEALTH_CHECK_SECONDS = 60


def _sqlite_folder(settings: Settings) -> None:
    # The embedded default keeps its file under var/; make sure the folder is there.
    settings.var_dir.mkdir(parents=True, exist_ok=True)


async def _seed_if_empty(settings: Settings) -> bool:
    """Seeds the demo into an empty database; True when it did."""
    from app.db.demo import database_is_empty, seed_demo
    from app.db.session import Database, create_engine

    db = Database(create_engine(settings.database_url))
    try:
        if not await database_is_empty(db):
            return False
        await seed_demo(db, today=date.today())
        return True
    finally:
        await db.dispose()


async def _mail_worker(settings: Settings) -> None:
    from app.db.session import Database, create_engine
    from app.mail.setup import mail_worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    db = Database(create_engine(settings.database_url))
    try:
        await mail_worker(db, settings).run(stop)
    finally:
        await db.dispose()


async def _mail_retry(settings: Settings, ids: Sequence[uuid.UUID], since: datetime | None) -> int:
    from app.db.session import Database, create_engine
    from app.mail import retry_failed

    db = Database(create_engine(settings.database_url))
    try:
        return await retry_failed(db, ids=ids, since=since)
    finally:
        await db.dispose()


async def _stripe_recover(settings: Settings, since: datetime) -> RecoveryReport:
    from app.db.session import Database, create_engine
    from app.payments import Payments

    db = Database(create_engine(settings.database_url))
    payments = Payments(db, settings)
    try:
        return await payments.recover(since)
    finally:
        await payments.close()
        await db.dispose()


def _since(value: str) -> datetime:
    """An ISO time; one without a zone is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an ISO time: {value!r}") from error
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def installed_or_auto(module: str) -> str:
    """The server's event loop (uvloop) or HTTP parser (httptools) by name where it is
    installed, otherwise uvicorn's own choice: uvloop has no Windows build."""
    return module if importlib.util.find_spec(module) is not None else "auto"


def print_sign_ins(sign_ins: Sequence[DemoSignIn]) -> None:
    from app.db.demo import DEMO_PASSWORD

    print(f"Demo sign-ins (password for all: {DEMO_PASSWORD}):")
    for sign_in in sign_ins:
        where = f"tenant {sign_in.tenant_slug}" if sign_in.tenant_slug else "portal"
        print(f"  {sign_in.kind:<6} {sign_in.email:<34} {where:<18} {sign_in.role}")


def server_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn serves the app, besides where and with how many workers."""
    from app.logs import logging_config

    return {
        # X-Forwarded-For and -Proto count only from the proxies named in the settings;
        # the app reads the client's address from the connection uvicorn describes.
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": settings.trusted_proxies,
        "loop": installed_or_auto("uvloop"),
        "http": installed_or_auto("httptools"),
        "timeout_worker_healthcheck": WORKER_HEALTH_CHECK_SECONDS,
        # Requests in flight finish after SIGTERM, for at most this long (H7).
        "timeout_graceful_shutdown": settings.shutdown_timeout,
        # JSON lines outside development; each request's own line replaces the access log.
        "log_config": logging_config(settings),
        "access_log": False,
    }


def _settings_or_exit() -> Settings:
    """The settings, or a line per wrong setting on stderr and exit status 2: never a value,
    nor a traceback that would quote one."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from app.settings import get_settings, problems_of

    try:
        return get_settings()
    except (ValidationError, SettingsError) as error:
        problems = problems_of(error)
    for line in problems:
        print(f"portal: {line}", file=sys.stderr)
    sys.exit(2)


def _with_stand_in(settings: Settings, host: str, port: int) -> Settings:
    """The settings again, pointed at the Stripe stand-in: development only, and only where
    no Stripe keys are set."""
    from app.dev_payments import start_stand_in

    if not settings.is_development:
        print("portal: --stripe-standin is for development only", file=sys.stderr)
        sys.exit(2)
    if settings.payments_enabled:
        print("portal: Stripe keys are set; the stand-in is not started", file=sys.stderr)
        return settings
    start_stand_in(f"http://{host}:{port}/webhooks/stripe")
    from app.settings import get_settings

    get_settings.cache_clear()
    return _settings_or_exit()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="portal", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="upgrade the database to the latest migration")
    commands.add_parser("seed", help="write the demo tenants into an empty database")
    commands.add_parser(
        "schema",
        help="write schema.graphql, frontend-contract/portal.graphql and"
        " frontend-contract/persisted-documents.json",
    )
    serve = commands.add_parser("serve", help="serve both GraphQL endpoints")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    commands.add_parser("mail-worker", help="send the email outbox until SIGTERM or SIGINT")
    retry = commands.add_parser(
        "mail-retry",
        help="return emails that failed for good to the queue, to be sent again",
    )
    retry.add_argument(
        "--id",
        dest="ids",
        metavar="ID",
        type=uuid.UUID,
        action="append",
        default=[],
        help="only this email (the id in the worker's log); may be given more than once",
    )
    retry.add_argument(
        "--since",
        type=_since,
        metavar="TIME",
        help="only emails written since this ISO time, e.g. 2026-11-20T00:00Z",
    )
    recover = commands.add_parser(
        "stripe-recover",
        help="apply the Stripe events since a time that the webhook did not record"
        " (Stripe lists 30 days of events)",
    )
    recover.add_argument(
        "--since", type=_since, required=True, help="an ISO time, e.g. 2026-11-20T00:00Z"
    )
    dev = commands.add_parser("dev", help="migrate, seed when empty, print sign-ins, serve")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument(
        "--stripe-standin",
        action="store_true",
        help="take demo card payments through a local test-mode stand-in for Stripe",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = _settings_or_exit()
    if getattr(args, "stripe_standin", False):
        settings = _with_stand_in(settings, args.host, args.port)
    if args.command == "schema":
        from app.sdl import write

        for path in write():
            print(f"wrote {path}")
        return
    _sqlite_folder(settings)
    if args.command == "mail-worker":
        asyncio.run(_mail_worker(settings))
        return
    if args.command == "mail-retry":
        returned = asyncio.run(_mail_retry(settings, args.ids, args.since))
        print(f"Returned {returned} failed email{'' if returned == 1 else 's'} to the queue.")
        return
    if args.command == "stripe-recover":
        report = asyncio.run(_stripe_recover(settings, args.since))
        print(
            f"Listed {report.listed} Stripe events: applied {report.applied},"
            f" {report.already_recorded} already recorded."
        )
        return
    if args.command in ("migrate", "dev"):
        from app.db.migrate import upgrade

        upgrade(settings.database_url)
    if args.command == "seed" or (args.command == "dev" and settings.seed_demo):
        seeded = asyncio.run(_seed_if_empty(settings))
        print("Seeded the demo tenants." if seeded else "The database has data: nothing seeded.")
    if args.command in ("seed", "dev"):
        from app.db.demo import DEMO_SIGN_INS

        print_sign_ins(DEMO_SIGN_INS)
    if args.command == "dev" and getattr(args, "stripe_standin", False):
        from app.dev_payments import connect_demo_account

        asyncio.run(connect_demo_account(settings.database_url))
        print(f"Stripe:            TEST MODE stand-in at {settings.stripe_api_base}")
    if args.command == "dev":
        print(f"Portal web app:    http://{args.host}:{args.port}/portal/")
        print(f"Staff playground:  http://{args.host}:{args.port}/graphql")
        print(f"Portal playground: http://{args.host}:{args.port}/portal/graphql")
    if args.command in ("serve", "dev"):
        workers = getattr(args, "workers", 1)
        with contextlib.ExitStack() as cleanup:
            if workers > 1 and MULTIPROCESS_DIR not in os.environ:
                # Each worker counts into files here; any of them answers a scrape with all.
                folder = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="metrics-"))
                os.environ[MULTIPROCESS_DIR] = folder
            uvicorn.run(
                "app.main:create_app",
                factory=True,
                host=args.host,
                port=args.port,
                workers=workers,
                **server_options(settings),
            )


if __name__ == "__main__":
    main()
