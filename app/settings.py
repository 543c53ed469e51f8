"""Every setting of the service, read once from the environment.

A setting that is wrong is named with what is wrong with it, never with its value: values
hold secrets (the secret key, passwords inside URLs, Stripe keys)."""

from __future__ import annotations

import enum
import ipaddress
import json
from collections.abc import Iterator
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

DEFAULT_SECRET = "development-secret-change-me-development-secret"  # noqa: S105
ENV_PREFIX = "PORTAL_"


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    env: Environment = Environment.DEVELOPMENT
    # A PostgreSQL URL may hold a password: kept out of the settings' repr, as every secret.
    database_url: str = Field(
        default="sqlite+aiosqlite:///./var/portal.db",
        validation_alias="DATABASE_URL",
        repr=False,
    )
    secret_key: str = Field(default=DEFAULT_SECRET, repr=False)
    public_url: str = "http://127.0.0.1:8000"
    # Bearer access tokens stay short: a revoked session is over within this many seconds.
    access_token_seconds: int = 300
    max_body_bytes: int = 64 * 1024
    # A GraphQL request still running after this many seconds is cancelled and rolled back.
    request_time_limit: float = Field(default=15.0, ge=0)
    # On SIGTERM the server takes no new requests and gives those in flight this many seconds.
    shutdown_timeout: float = Field(default=30.0, gt=0)
    database_pool_size: int = 10
    seed_demo: bool = True
    var_dir: Path = Path("./var")
    # Where the portal web app lives; links in emails point there.
    portal_app_url: str = "http://127.0.0.1:8000/portal"
    # Origins besides public_url whose pages may call the API with the session cookie.
    allowed_origins: list[str] = Field(default_factory=list)
    # The proxies (addresses or networks) whose X-Forwarded-For names the client; from any
    # other peer the header is ignored, so a client cannot choose the address it is counted
    # under. A JSON list or a comma-separated list.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Rate-limit counters live in the database unless a Redis URL is given.
    redis_url: str | None = Field(default=None, repr=False)
    # Live updates over WebSocket (H8): how many connections one account or staff user may
    # hold open per worker, subscriptions per connection, the largest message a client may
    # send, how long a connection may wait to sign in, how often the server pings (a client
    # that has not answered two pings is closed), and how often a subscription re-checks
    # its viewer's access while no event comes.
    live_connections_per_viewer: int = Field(default=5, ge=1)
    live_subscriptions_per_connection: int = Field(default=10, ge=1)
    live_max_message_bytes: int = Field(default=16 * 1024, ge=1024)
    live_sign_in_seconds: float = Field(default=10.0, gt=0)
    live_ping_seconds: float = Field(default=20.0, gt=0)
    live_access_check_seconds: float = Field(default=5.0, gt=0)
    # Outgoing mail: SMTP when a URL is set (`smtp://user:pass@host:587?starttls=true` or
    # `smtps://...`); otherwise `.eml` files under var_dir/mail, which production refuses.
    smtp_url: SecretStr | None = None
    mail_from: str = "Customer Portal <no-reply@localhost>"
    mail_max_attempts: int = Field(default=12, ge=1)
    mail_poll_seconds: float = Field(default=2.0, gt=0)
    # Production sets this false on web workers and runs `portal mail-worker` on its own.
    mail_worker_in_process: bool = True
    # Card payments (E3): the platform's Stripe keys; each tenant is paid into its own
    # connected account. Without a secret key no tenant offers a pay action.
    stripe_secret_key: SecretStr | None = None
    stripe_publishable_key: str | None = None
    stripe_webhook_secret: SecretStr | None = None
    # Where the Stripe SDK sends its requests; tests point it at a local stand-in.
    stripe_api_base: str = "https://api.stripe.com"

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _list_of_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        """Every problem at once, one per setting, each named as the environment names it."""
        problems = dict(self._problems())
        if problems:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("setting", message),
                        loc=(name,),
                        input=None,
                    )
                    for name, message in problems.items()
                ],
            )
        return self

    def _problems(self) -> Iterator[tuple[str, str]]:
        production = self.env is Environment.PRODUCTION
        if production and (self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32):
            yield (
                "PORTAL_SECRET_KEY",
                "must be set to a random value of at least 32 characters in production",
            )
        if self.smtp_url is None:
            if production:
                yield "PORTAL_SMTP_URL", "must be set in production"
        elif urlsplit(self.smtp_url.get_secret_value()).scheme not in ("smtp", "smtps"):
            yield "PORTAL_SMTP_URL", "must start with smtp:// or smtps://"
        sender = parseaddr(self.mail_from)[1]
        if "\r" in self.mail_from or "\n" in self.mail_from or "@" not in sender:
            yield "PORTAL_MAIL_FROM", "must be one address, like 'Name <name@example.com>'"
        stripe = {
            "PORTAL_STRIPE_SECRET_KEY": self.stripe_secret_key is not None,
            "PORTAL_STRIPE_PUBLISHABLE_KEY": bool(self.stripe_publishable_key),
            "PORTAL_STRIPE_WEBHOOK_SECRET": self.stripe_webhook_secret is not None,
        }
        if any(stripe.values()):
            for name, given in stripe.items():
                if not given:
                    yield (
                        name,
                        "must be set with the other Stripe settings "
                        f"({', '.join(other for other in stripe if other != name)})",
                    )
        scheme = urlsplit(self.stripe_api_base).scheme
        if scheme != "https" and (production or scheme != "http"):
            yield "PORTAL_STRIPE_API_BASE", "must be an https address"
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                yield (
                    "PORTAL_TRUSTED_PROXIES",
                    "must list the IP addresses or networks (like 10.0.0.0/8) of the proxies "
                    "in front of the service",
                )
                break

    @property
    def payments_enabled(self) -> bool:
        return self.stripe_secret_key is not None

    @property
    def is_development(self) -> bool:
        return self.env is Environment.DEVELOPMENT

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION


def environment_name(field: str) -> str:
    """The environment variable a setting is read from: `secret_key` is PORTAL_SECRET_KEY."""
    info = Settings.model_fields.get(field)
    if info is None:
        return field
    alias = info.validation_alias
    return alias if isinstance(alias, str) else f"{ENV_PREFIX}{field.upper()}"


def problems_of(error: ValidationError | SettingsError) -> list[str]:
    """What is wrong with the environment, one line per setting, without any value."""
    if isinstance(error, SettingsError):
        # Raised for a value that is not JSON where JSON is expected; its text names the
        # field and its source, and its cause (which may quote the value) is left out.
        field = next((name for name in Settings.model_fields if f'"{name}"' in str(error)), "")
        return [f"{environment_name(field) or 'a setting'}: is not valid JSON"]
    lines: dict[str, str] = {}
    for detail in error.errors(include_url=False, include_context=False, include_input=False):
        location = detail["loc"]
        name = environment_name(str(location[0])) if location else "settings"
        message = detail["msg"].removeprefix("Value error, ")
        lines.setdefault(name, f"{name}: {message}")
    return list(lines.values())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
