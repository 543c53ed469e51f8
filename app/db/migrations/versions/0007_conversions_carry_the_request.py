"""conversions carry the request: a job or rental made from a request keeps its PO number,
preferred date, notes and the product and service names

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain columns only: SQLite adds them in place, without rebuilding tables that others
# reference (a rebuild of `jobs` would fail on, or cascade into, the rows pointing at it).
def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("product_name", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("service_name", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("preferred_date", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column("notes", sa.String(length=4000), nullable=False, server_default="")
        )
    with op.batch_alter_table("rentals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("po_number", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("product_name", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("service_name", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("notes", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    # Not in batch: SQLite (3.35 and later) drops a plain column in place, where a rebuild of
    # `jobs` would fail on, or cascade into, the rows that reference it.
    for table, columns in (
        ("rentals", ("notes", "service_name", "product_name", "po_number")),
        ("jobs", ("notes", "preferred_date", "service_name", "product_name")),
    ):
        for column in columns:
            op.drop_column(table, column)
