"""Every setting of the service, read once from the environment."""

from __future__ import annotations

import enum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
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
    database_pool_size: int = 10
    seed_demo: bool = True
    var_dir: Path = Path("./var")

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

    @property
    def is_development(self) -> bool:
        return self.env is Environment.DEVELOPMENT

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
