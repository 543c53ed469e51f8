"""`make run`'s card payments: the test-mode stand-in for Stripe (tests/stripe_standin.py)
on loopback, so a newcomer pays a demo invoice end to end without the internet.

Development only: `portal dev --stripe-standin` refuses in any other environment, the
stand-in ships with the source checkout and never in the package, and the page marks every
payment made through it as TEST MODE."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import sqlalchemy as sa

from app.db.scope import SYSTEM
from app.db.session import Database, create_engine

if TYPE_CHECKING:
    from tests.stripe_standin import StandInServer

# The demo business every demo portal user is a customer of, paid into this account.
DEMO_SLUG = "acme"
DEMO_ACCOUNT = "acct_demo_acme"


def start_stand_in(webhook_url: str) -> StandInServer:
    """Starts the stand-in and points this process's settings at it."""
    try:
        from tests.stripe_standin import (
            PUBLISHABLE_KEY,
            SECRET_KEY,
            WEBHOOK_SECRET,
            StandInServer,
        )
    except ImportError as missing:
        raise SystemExit(
            "portal: --stripe-standin needs the source checkout's tests/ folder"
        ) from missing
    server = StandInServer()
    server.start()
    server.stripe.webhook_url = webhook_url
    os.environ.update(
        {
            "PORTAL_STRIPE_SECRET_KEY": SECRET_KEY,
            "PORTAL_STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            "PORTAL_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "PORTAL_STRIPE_API_BASE": server.url,
        }
    )
    return server


async def connect_demo_account(database_url: str) -> None:
    """Gives the demo business a (stand-in) Stripe account, unless it has one."""
    db = Database(create_engine(database_url))
    try:
        async with db.transaction(SYSTEM) as session:
            await session.execute(
                sa.text(
                    "UPDATE tenants SET stripe_account_id = :account"
                    " WHERE slug = :slug AND stripe_account_id IS NULL"
                ),
                {"account": DEMO_ACCOUNT, "slug": DEMO_SLUG},
            )
    finally:
        await db.dispose()
