"""Every setting of the service, read once from the environment."""

from __future__ import annotations

import enum
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "development-secret-change-me-development-secret"  # noqa: S105


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore")

    env: Environment = Environment.DEVELOPMENT
    database_url: str = Field(
        default="sqlite+aiosqlite:///./var/portal.db",
        validation_alias="DATABASE_URL",
    )
    secret_key: str = DEFAULT_SECRET
    public_url: str = "http://127.0.0.1:8000"
    # Bearer access tokens stay short: a revoked session is over within this many seconds.
    access_token_seconds: int = 300
    max_body_bytes: int = 64 * 1024
    # A GraphQL request still running after this many seconds is cancelled and rolled back.
    request_time_limit: float = Field(default=15.0, ge=0)
    database_pool_size: int = 10
    seed_demo: bool = True
    var_dir: Path = Path("./var")
    # Where the portal web app lives; links in emails point there.
    portal_app_url: str = "http://127.0.0.1:8000/portal"
    # Origins besides public_url whose pages may call the API with the session cookie.
    allowed_origins: list[str] = Field(default_factory=list)
    # Rate-limit counters live in the database unless a Redis URL is given.
    redis_url: str | None = None
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

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        if self.env is Environment.PRODUCTION and (
            self.secret_key == DEFAULT_SECRET or len(self.secret_key) < 32
        ):
            raise ValueError(
                "PORTAL_SECRET_KEY must be set to a random value of at least 32 characters "
                "in production"
            )
        return self

    @model_validator(mode="after")
    def _check_mail(self) -> Settings:
        if self.smtp_url is None:
            if self.env is Environment.PRODUCTION:
                raise ValueError("PORTAL_SMTP_URL must be set in production")
        elif urlsplit(self.smtp_url.get_secret_value()).scheme not in ("smtp", "smtps"):
            raise ValueError("PORTAL_SMTP_URL must start with smtp:// or smtps://")
        sender = parseaddr(self.mail_from)[1]
        if "\r" in self.mail_from or "\n" in self.mail_from or "@" not in sender:
            raise ValueError("PORTAL_MAIL_FROM must be one address, like 'Name <name@example.com>'")
        return self

    @model_validator(mode="after")
    def _check_stripe(self) -> Settings:
        given = [
            self.stripe_secret_key is not None,
            bool(self.stripe_publishable_key),
            self.stripe_webhook_secret is not None,
        ]
        if any(given) and not all(given):
            raise ValueError(
                "PORTAL_STRIPE_SECRET_KEY, PORTAL_STRIPE_PUBLISHABLE_KEY and "
                "PORTAL_STRIPE_WEBHOOK_SECRET are set together or not at all"
            )
        scheme = urlsplit(self.stripe_api_base).scheme
        if scheme != "https" and (self.env is Environment.PRODUCTION or scheme != "http"):
            raise ValueError("PORTAL_STRIPE_API_BASE must be an https address")
        return self

    @property
    def payments_enabled(self) -> bool:
        return self.stripe_secret_key is not None

    @property
    def is_development(self) -> bool:
        return self.env is Environment.DEVELOPMENT

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
