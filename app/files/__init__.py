"""Logos: checked when uploaded, kept in the database (so every worker serves the same
bytes), and served at a public address for the sign-in page and emails (T5).

Uploads come as base64 inside an ordinary JSON GraphQL request, so they pass the same
cross-site checks as every other mutation (no multipart form a foreign page could post),
and fit the request body limit."""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.db.models import Customer, StoredFile, Tenant
from app.db.scope import Scope
from app.db.session import Database
from app.errors import AppError, ErrorCode
from app.settings import Settings

# Base64 makes this about 54 KiB, inside the 64 KiB request body limit.
MAX_LOGO_BYTES = 40 * 1024
# Raster images only: an SVG can carry script.
_SIGNATURES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/webp": (b"RIFF",),
}


@dataclass(frozen=True, slots=True)
class Logo:
    content_type: str
    content: bytes


def checked_logo(content_type: str, data_base64: str) -> Logo:
    """The logo's bytes, when they are a PNG, JPEG or WebP image of at most MAX_LOGO_BYTES
    whose content matches the type it claims."""
    kind = content_type.strip().lower()
    if kind not in _SIGNATURES:
        raise AppError(
            "A logo must be a PNG, JPEG or WebP image.",
            code=ErrorCode.FILE_TYPE_NOT_ALLOWED,
            field="contentType",
        )
    if len(data_base64) > (MAX_LOGO_BYTES * 4) // 3 + 4:
        raise _too_large()
    try:
        content = base64.b64decode(data_base64, validate=True)
    except (binascii.Error, ValueError) as error:
        raise AppError("The logo is not valid base64.", field="base64") from error
    if len(content) > MAX_LOGO_BYTES:
        raise _too_large()
    webp = kind != "image/webp" or content[8:12] == b"WEBP"
    if not content.startswith(_SIGNATURES[kind]) or not webp:
        raise AppError(
            f"The file is not a {kind} image.",
            code=ErrorCode.FILE_TYPE_NOT_ALLOWED,
            field="base64",
        )
    return Logo(content_type=kind, content=content)


def _too_large() -> AppError:
    return AppError(
        f"A logo can be at most {MAX_LOGO_BYTES // 1024} KiB.",
        code=ErrorCode.FILE_TOO_LARGE,
        field="base64",
    )


def stored_logo(tenant_id: uuid.UUID, logo: Logo) -> StoredFile:
    return StoredFile(
        tenant_id=tenant_id,
        filename="logo",
        content_type=logo.content_type,
        byte_size=len(logo.content),
        sha256=hashlib.sha256(logo.content).hexdigest(),
        content=logo.content,
    )


def logo_url(settings: Settings, tenant_id: uuid.UUID, customer_id: uuid.UUID | None = None) -> str:
    path = f"/files/logo/{tenant_id}" + (f"/{customer_id}" if customer_id else "")
    return settings.public_url.rstrip("/") + path


def logo_routes(db: Database) -> list[Route]:
    """Public: a logo is shown on the sign-in page, before anyone signs in. Only the file a
    tenant or customer names as its logo is served, never any other stored file."""

    async def serve(request: Request) -> Response:
        try:
            tenant_id = uuid.UUID(request.path_params["tenant_id"])
            customer = request.path_params.get("customer_id")
            customer_id = uuid.UUID(customer) if customer else None
        except ValueError:
            return Response(status_code=404)
        async with db.session(Scope.tenant(tenant_id)) as session:
            owner = (
                await session.get(Customer, (tenant_id, customer_id))
                if customer_id
                else await session.get(Tenant, tenant_id)
            )
            file_id = owner.logo_file_id if owner is not None else None
            found = await session.get(StoredFile, (tenant_id, file_id)) if file_id else None
        if found is None:
            return Response(status_code=404)
        etag = f'"{found.sha256}"'
        headers = {
            "etag": etag,
            "cache-control": "public, max-age=300",
            "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'",
        }
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(found.content, media_type=found.content_type, headers=headers)

    return [
        Route("/files/logo/{tenant_id}", serve, methods=["GET"]),
        Route("/files/logo/{tenant_id}/{customer_id}", serve, methods=["GET"]),
    ]
