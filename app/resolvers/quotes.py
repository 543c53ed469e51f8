"""Quotes as the portal shows them; drafts never reach it (the data layer)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlmodel import col

from app.auth.viewer import PortalViewer
from app.context import Context
from app.db.base import utcnow
from app.db.models import Quote, QuoteStatus, Tenant
from app.errors import AppError, ErrorCode, NotFound
from app.messages import live
from app.messages.live import LiveEvent
from app.resolvers.invoices import today_at
from app.resolvers.pagination import Page, tenant_page


async def quotes_page(
    ctx: Context, *, contractor: uuid.UUID | None, first: int | None, after: str | None
) -> Page[Quote]:
    return await tenant_page(
        ctx,
        Quote,
        sort=col(Quote.created_at),
        first=first,
        after=after,
        contractor=contractor,
        loader=ctx.loaders.quote_by_id,
    )


async def decide_quote(ctx: Context, *, quote_id: uuid.UUID, approve: bool) -> Quote:
    """Approves or declines a sent quote, once: of two decisions sent at once, one wins and
    the other is told the quote is decided."""
    viewer = ctx.viewer
    assert isinstance(viewer, PortalViewer), "guarded by RequiresModule"
    async with ctx.db.transaction(ctx.scope) as session:
        quote = await session.scalar(sa.select(Quote).where(col(Quote.id) == quote_id))
        if quote is None:
            raise NotFound("There is no such quote.", field="quoteId")
        tenant = await session.get(Tenant, quote.tenant_id)
        assert tenant is not None
        if quote.valid_until is not None and quote.valid_until < today_at(tenant):
            raise AppError(
                "This quote has expired; ask for a new one.", code=ErrorCode.QUOTE_NOT_OPEN
            )
        decided = await session.execute(
            sa.update(Quote)
            .where(
                col(Quote.tenant_id) == quote.tenant_id,
                col(Quote.id) == quote.id,
                col(Quote.status) == QuoteStatus.SENT,
            )
            .values(
                status=QuoteStatus.APPROVED if approve else QuoteStatus.DECLINED,
                decided_at=utcnow(),
                decided_by_account_id=viewer.account_id,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(decided, "rowcount", 0) != 1:
            raise AppError(
                f"This quote is {quote.status.value.lower()} and cannot be decided now.",
                code=ErrorCode.QUOTE_NOT_OPEN,
            )
        await session.refresh(quote)
        event = LiveEvent("quote", quote.tenant_id, quote.customer_id, quote.id)
        await live.stage(ctx.live, session, event)
    await live.committed(ctx.live, event)
    return quote
