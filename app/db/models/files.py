from __future__ import annotations

from sqlmodel import Field

from app.db.base import TenantOwned


class StoredFile(TenantOwned, table=True):
    """A file a tenant owns (certificate documents, logos), kept in the database so every
    worker serves the same bytes."""

    __tablename__ = "stored_files"

    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=127)
    byte_size: int
    sha256: str = Field(max_length=64)
    content: bytes
