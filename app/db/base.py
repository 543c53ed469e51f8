"""Column types and the tenant-owned base every tenant table shares."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION


def table_of(model: type[Any]) -> sa.Table:
    """A model's table, for statements that read its columns rather than its objects."""
    table: sa.Table = getattr(model, "__table__")  # noqa: B009  (SQLModel does not declare it)
    return table


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no zone, so values are normalised to UTC on the way in and marked UTC on
    the way out; PostgreSQL stores them as timestamptz.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def enum_column(enum_type: type[enum.Enum]) -> Any:
    """A portable enum column: a VARCHAR holding the member's value, with no native type."""
    return sa.Enum(
        enum_type,
        native_enum=False,
        length=32,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


def timestamp_field(**kwargs: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, **kwargs)


def tenant_fk(
    columns: list[str], table: str, *, ondelete: str | None = None
) -> sa.ForeignKeyConstraint:
    """A foreign key to another tenant-owned table that also carries the tenant id.

    Pairing every reference with `tenant_id` means the database itself refuses a row that
    points at another tenant's record.
    """
    return sa.ForeignKeyConstraint(
        ["tenant_id", *columns],
        [f"{table}.tenant_id", f"{table}.id"],
        ondelete=ondelete,
    )


def tenant_index(table: str, *columns: str, unique: bool = False) -> sa.Index:
    """An index that leads with the tenant id, as every index on a tenant table does."""
    name = f"{'uq' if unique else 'ix'}_{table}_{'_'.join(columns)}"
    return sa.Index(name, "tenant_id", *columns, unique=unique)


class TenantOwned(SQLModel):
    """Columns of every record that belongs to a tenant: the primary key is (tenant_id, id)."""

    tenant_id: uuid.UUID = Field(primary_key=True, foreign_key="tenants.id")
    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    created_at: datetime = timestamp_field()
