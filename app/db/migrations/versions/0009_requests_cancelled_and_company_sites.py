"""customers withdraw requests and start with a company site: a request cancelled from the
portal keeps its reason, and each customer without a site is given its company site

Revision ID: 0009
Revises: 0008_messages
Create Date: 2026-12-01 06:40:00.000000
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008_messages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_customers = sa.table("customers", sa.column("tenant_id", sa.Uuid()), sa.column("id", sa.Uuid()))
_sites = sa.table(
    "sites",
    sa.column("tenant_id", sa.Uuid()),
    sa.column("id", sa.Uuid()),
    sa.column("customer_id", sa.Uuid()),
    sa.column("name", sa.String()),
    sa.column("address_line1", sa.String()),
    sa.column("is_company_site", sa.Boolean()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


# A plain column: SQLite adds it in place, without rebuilding a table others reference. The
# status column is a VARCHAR without a CHECK, so CANCELLED needs no change to it.
def upgrade() -> None:
    op.add_column(
        "service_requests", sa.Column("cancel_reason", sa.String(length=2000), nullable=True)
    )
    _give_customers_their_company_site()


def _give_customers_their_company_site() -> None:
    """Customers made before every customer started with one get a company site, with no
    address yet: nothing on file says where they are."""
    bind = op.get_bind()
    siteless = bind.execute(
        sa.select(_customers.c.tenant_id, _customers.c.id).where(
            ~sa.exists().where(
                _sites.c.tenant_id == _customers.c.tenant_id,
                _sites.c.customer_id == _customers.c.id,
            )
        )
    ).all()
    now = datetime.now(UTC)
    # SQLite keeps timestamps as naive UTC, as the models' UTCDateTime writes them.
    stamp = now.replace(tzinfo=None) if bind.dialect.name == "sqlite" else now
    rows = [
        {
            "tenant_id": tenant_id,
            "id": uuid.uuid4(),
            "customer_id": customer_id,
            "name": "Company Site",
            "address_line1": "",
            "is_company_site": True,
            "created_at": stamp,
            "updated_at": stamp,
        }
        for tenant_id, customer_id in siteless
    ]
    for start in range(0, len(rows), 500):
        bind.execute(_sites.insert(), rows[start : start + 500])


def downgrade() -> None:
    op.execute("UPDATE service_requests SET status = 'DECLINED' WHERE status = 'CANCELLED'")
    op.drop_column("service_requests", "cancel_reason")
