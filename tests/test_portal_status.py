"""T2-T4 on the staff side: the office sees whether each customer's users can use the
portal now, and if not, why not."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from sqlmodel import col

from app.db.models import StaffUser, Tenant
from app.db.scope import SYSTEM
from app.db.session import Database
from app.settings import Environment, Settings
from tests.support import gql, staff_token

STATUSES = "{ customers(first: 100) { edges { node { name portalStatus } } } }"


async def _statuses(db: Database, client: httpx.AsyncClient, email: str) -> dict[str, str]:
    async with db.session(SYSTEM) as session:
        user = await session.scalar(sa.select(StaffUser).where(col(StaffUser.email) == email))
    assert user is not None
    token = await staff_token(db, Settings(env=Environment.TEST), user)
    body = await gql(client, STATUSES, token=token)
    assert "errors" not in body, body
    return {
        edge["node"]["name"]: edge["node"]["portalStatus"]
        for edge in body["data"]["customers"]["edges"]
    }


async def test_t4_staff_see_which_customers_have_the_portal_switched_off(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    statuses = await _statuses(demo_db, demo_client, "owner@acme.example")
    off = {name for name, status in statuses.items() if status == "CUSTOMER_PORTAL_OFF"}
    assert off == {"City Council Parks Dept"}
    assert {status for name, status in statuses.items() if name not in off} == {"AVAILABLE"}


async def test_t2_staff_of_a_business_without_the_plan_see_why_nobody_can_use_it(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    statuses = await _statuses(demo_db, demo_client, "owner@brightwater.example")
    assert statuses and set(statuses.values()) == {"NOT_IN_PLAN"}


async def test_t3_staff_see_the_business_wide_switch_before_a_customers_own(
    demo_db: Database, demo_client: httpx.AsyncClient
) -> None:
    async with demo_db.transaction(SYSTEM) as session:
        await session.execute(
            sa.update(Tenant).where(col(Tenant.slug) == "acme").values(portal_enabled=False)
        )
    statuses = await _statuses(demo_db, demo_client, "owner@acme.example")
    assert set(statuses.values()) == {"BUSINESS_PORTAL_OFF"}
