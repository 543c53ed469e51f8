"""customers withdraw requests: a request cancelled from the portal keeps its reason

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-01 06:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# A plain column: SQLite adds it in place, without rebuilding a table others reference. The
# status column is a VARCHAR without a CHECK, so CANCELLED needs no change to it.
def upgrade() -> None:
    op.add_column(
        "service_requests", sa.Column("cancel_reason", sa.String(length=2000), nullable=True)
    )


def downgrade() -> None:
    op.execute("UPDATE service_requests SET status = 'DECLINED' WHERE status = 'CANCELLED'")
    op.drop_column("service_requests", "cancel_reason")
