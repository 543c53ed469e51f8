"""Fresh, migrated databases for tests: one template per backend, copied for each test."""

from __future__ import annotations

import asyncio
import shutil
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import asyncpg
from sqlalchemy.engine import URL, make_url

from app.db.migrate import upgrade

T = TypeVar("T")


def run_in_thread(make: Callable[[], Awaitable[T]]) -> T:
    """Runs a coroutine to completion on a thread of its own, whatever loop the caller has."""
    result: dict[str, T] = {}
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result["value"] = asyncio.run(make())  # type: ignore[arg-type]
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result["value"]


async def connect(url: URL | str, give_up_after: float = 60) -> asyncpg.Connection:
    """A plain asyncpg connection to the database a SQLAlchemy URL names."""
    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
        timeout=give_up_after,
    )


@dataclass
class SqliteDatabases:
    folder: Path
    templates: dict[str, Path] = field(default_factory=dict)

    def template(self, name: str, prepare: Callable[[str], None]) -> Path:
        if name not in self.templates:
            path = self.folder / f"template-{name}.db"
            url = f"sqlite+aiosqlite:///{path}"
            run_in_thread(lambda: asyncio.to_thread(upgrade, url))
            prepare(url)
            self.templates[name] = path
        return self.templates[name]

    def fresh(self, name: str, prepare: Callable[[str], None]) -> str:
        source = self.template(name, prepare)
        target = self.folder / f"test-{uuid.uuid4().hex}.db"
        shutil.copyfile(source, target)
        return f"sqlite+aiosqlite:///{target}"

    def drop(self, url: str) -> None:
        path = Path(make_url(url).database or "")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


@dataclass
class PostgresDatabases:
    """Each test gets `CREATE DATABASE ... TEMPLATE`, a copy made by the server itself."""

    admin_url: str
    prefix: str = field(default_factory=lambda: f"portal_{uuid.uuid4().hex[:8]}")
    templates: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)

    def _url_for(self, database: str) -> str:
        return (
            make_url(self.admin_url)
            .set(drivername="postgresql+asyncpg", database=database)
            .render_as_string(hide_password=False)
        )

    def _admin(self, sql: str) -> None:
        url = make_url(self.admin_url)

        async def run() -> None:
            connection = await connect(url)
            try:
                await connection.execute(sql)
            finally:
                await connection.close()

        run_in_thread(run)

    def template(self, name: str, prepare: Callable[[str], None]) -> str:
        if name not in self.templates:
            database = f"{self.prefix}_tmpl_{name}"
            self._admin(f'CREATE DATABASE "{database}"')
            self.created.append(database)
            url = self._url_for(database)
            run_in_thread(lambda: asyncio.to_thread(upgrade, url))
            prepare(url)
            self.templates[name] = database
        return self.templates[name]

    def fresh(self, name: str, prepare: Callable[[str], None]) -> str:
        template = self.template(name, prepare)
        database = f"{self.prefix}_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{database}" TEMPLATE "{template}"')
        return self._url_for(database)

    def drop(self, url: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')

    def drop_templates(self) -> None:
        for database in self.created:
            self._admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def postgres_reachable(url: str) -> str | None:
    """None when PostgreSQL answers at `url`; otherwise why not."""
    parsed = make_url(url)

    async def probe() -> None:
        connection = await connect(parsed, give_up_after=5)
        await connection.close()

    try:
        run_in_thread(probe)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        return f"{type(error).__name__}: {error}"
    return None
