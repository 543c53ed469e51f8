"""What every resolver sees about the request it answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from starlette.requests import Request
from starlette.responses import Response
from strawberry.types import Info as StrawberryInfo

from app.auth.ratelimit import RateLimiter
from app.auth.resolve import SignIn
from app.auth.viewer import Viewer, scope_for
from app.dataloaders import Loaders
from app.db.scope import Scope
from app.db.session import Database
from app.messages.live import LiveEvents
from app.payments import Payments
from app.settings import Settings


@dataclass
class Context:
    request: Request
    response: Response | None
    db: Database
    settings: Settings
    viewer: Viewer
    request_id: str
    rate_limiter: RateLimiter
    payments: Payments
    # Live events: written to by mutations, listened to by subscriptions.
    live: LiveEvents | None = None
    # A WebSocket connection's `connection_init` payload, and how it signed in.
    connection_params: dict[str, object] | None = None
    sign_in: SignIn | None = None
    _loaders: Loaders | None = field(default=None, init=False, repr=False)

    @cached_property
    def scope(self) -> Scope:
        return scope_for(self.viewer)

    def forget_scope(self) -> None:
        """Drops the scope and what was loaded in it, for a viewer read again."""
        self.__dict__.pop("scope", None)
        self._loaders = None

    def forget_loaded(self) -> None:
        """Drops what the loaders hold, for a fresh start at the same request."""
        self._loaders = None

    @property
    def loaders(self) -> Loaders:
        # Built on first use: a request that loads nothing builds no loaders.
        if self._loaders is None:
            self._loaders = Loaders(self.db, self.scope)
        return self._loaders


Info = StrawberryInfo[Context, None]
