"""Certificate documents, served over plain HTTP through short-lived links signed for one
portal account.

A certificate link works without credentials on the request (a mobile app may hand it to
the system browser), so it carries its own: the account it was made for and an expiry,
signed with the service's secret. On download the account's access is read again, through
the same data layer as every query, so a link outlives neither the access nor five minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from sqlmodel import col
from starlette.requests import Request
from starlette.responses import Response

from app.auth.resolve import portal_grants
from app.db.models import Certificate, PortalAccount, StoredFile
from app.db.scope import SYSTEM, Scope
from app.db.session import Database
from app.errors import ErrorCode
from app.http import error_response
from app.settings import Settings

Endpoint = Callable[[Request], Awaitable[Response]]

CERTIFICATE_PATH = "/portal/files/certificates"
LINK_SECONDS = 300
# An expiry as this service writes it: ASCII digits of a Unix time. `str.isdigit` also
# takes "²" and Python will not read an integer of thousands of digits.
_EXPIRES = re.compile(r"[0-9]{1,12}")


def _signature(settings: Settings, account_id: uuid.UUID, file: str, expires: int) -> str:
    message = f"certificate:{account_id}:{file}:{expires}".encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


def certificate_link(
    settings: Settings,
    *,
    account_id: uuid.UUID,
    certificate_id: uuid.UUID,
    now: float | None = None,
) -> str:
    expires = int(now if now is not None else time.time()) + LINK_SECONDS
    query = urlencode(
        {
            "account": str(account_id),
            "expires": expires,
            "signature": _signature(settings, account_id, str(certificate_id), expires),
        }
    )
    return f"{CERTIFICATE_PATH}/{certificate_id}?{query}"


def _not_found() -> Response:
    return error_response(404, ErrorCode.NOT_FOUND, "Not found.")


def _file_response(file: StoredFile, *, private: bool) -> Response:
    return Response(
        file.content,
        media_type=file.content_type,
        headers={
            "content-disposition": f"attachment; filename*=UTF-8''{quote(file.filename)}"
            if private
            else "inline",
            "cache-control": "private, no-store" if private else "public, max-age=300",
            "x-content-type-options": "nosniff",
        },
    )


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value or "")
    except ValueError:
        return None


def certificate_download(db: Database, settings: Settings) -> Endpoint:
    async def download(request: Request) -> Response:
        certificate_id = _uuid(request.path_params.get("certificate_id"))
        account_id = _uuid(request.query_params.get("account"))
        expires = request.query_params.get("expires", "")
        signature = request.query_params.get("signature", "")
        # Every refusal is the same 404: a link never tells what exists.
        if certificate_id is None or account_id is None or not _EXPIRES.fullmatch(expires):
            return _not_found()
        expected = _signature(settings, account_id, str(certificate_id), int(expires))
        if not hmac.compare_digest(expected, signature) or int(expires) < time.time():
            return _not_found()
        async with db.session(SYSTEM) as session:
            account = await session.get(PortalAccount, account_id)
            grants = (
                await portal_grants(session, account_id) if account and account.is_active else ()
            )
        if not grants:
            return _not_found()
        # Read as that account: the data layer decides whether it still reaches the file.
        async with db.session(Scope.portal(grants)) as session:
            file = await session.scalar(
                sa.select(StoredFile)
                .join(
                    Certificate,
                    sa.and_(
                        col(Certificate.tenant_id) == col(StoredFile.tenant_id),
                        col(Certificate.file_id) == col(StoredFile.id),
                    ),
                )
                .where(col(Certificate.id) == certificate_id)
            )
        return _file_response(file, private=True) if file is not None else _not_found()

    return download
