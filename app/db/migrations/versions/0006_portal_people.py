"""portal people: invited users before they accept, and requests keep their sender's name

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 09:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("portal_memberships", schema=None) as batch_op:
        batch_op.alter_column("account_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.add_column(sa.Column("invited_username", sa.String(length=64), nullable=True))
    with op.batch_alter_table("service_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_name", sa.String(length=200), nullable=True))
    op.execute(
        "UPDATE service_requests SET contact_name = ("
        " SELECT contacts.name FROM contacts"
        " WHERE contacts.tenant_id = service_requests.tenant_id"
        " AND contacts.id = service_requests.contact_id)"
        " WHERE contact_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("service_requests", schema=None) as batch_op:
        batch_op.drop_column("contact_name")
    op.execute("DELETE FROM portal_memberships WHERE account_id IS NULL")
    with op.batch_alter_table("portal_memberships", schema=None) as batch_op:
        batch_op.drop_column("invited_username")
        batch_op.alter_column("account_id", existing_type=sa.Uuid(), nullable=False)
