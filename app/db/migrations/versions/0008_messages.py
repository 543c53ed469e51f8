"""messages: threads keep what they are about and messages their author's name; the delay
before a customer is emailed about an unread message, whether customers see staff first
names, the notices sent, and how each staff user is emailed what customers do

Revision ID: 0008_messages
Revises: 0007
Create Date: 2026-12-01 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.base

revision: str = "0008_messages"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain columns: SQLite adds them in place, without rebuilding `tenants`.
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("message_notice_minutes", sa.Integer(), nullable=False, server_default="15")
        )
        batch_op.add_column(
            sa.Column(
                "message_staff_first_names",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
    with op.batch_alter_table("message_threads", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("title", sa.String(length=255), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column(
                "customer_notice_due_at", app.db.base.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.create_index(
            "ix_message_threads_customer_notice_due_at", ["customer_notice_due_at"], unique=False
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("author_name", sa.String(length=200), nullable=False, server_default="")
        )
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "activity_emails",
                sa.Enum(
                    "NONE",
                    "INSTANT",
                    "DAILY",
                    name="activityemails",
                    native_enum=False,
                    length=32,
                ),
                nullable=False,
                server_default="NONE",
            )
        )
        batch_op.add_column(
            sa.Column(
                "activity_emailed_until", app.db.base.UTCDateTime(timezone=True), nullable=True
            )
        )
    op.create_table(
        "message_notices",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("thread_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["portal_accounts.id"],
            name=op.f("fk_message_notices_account_id_portal_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "thread_id"],
            ["message_threads.tenant_id", "message_threads.id"],
            name=op.f("fk_message_notices_tenant_id_thread_id_message_threads"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_message_notices_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_message_notices")),
    )
    with op.batch_alter_table("message_notices", schema=None) as batch_op:
        batch_op.create_index(
            "uq_message_notices_thread_id_account_id",
            ["tenant_id", "thread_id", "account_id"],
            unique=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("message_notices", schema=None) as batch_op:
        batch_op.drop_index("uq_message_notices_thread_id_account_id")
    op.drop_table("message_notices")
    with op.batch_alter_table("message_threads", schema=None) as batch_op:
        batch_op.drop_index("ix_message_threads_customer_notice_due_at")
    for table, column in (
        ("staff_users", "activity_emailed_until"),
        ("staff_users", "activity_emails"),
        ("messages", "author_name"),
        ("message_threads", "customer_notice_due_at"),
        ("message_threads", "title"),
        ("tenants", "message_staff_first_names"),
        ("tenants", "message_notice_minutes"),
    ):
        op.drop_column(table, column)
