"""The portal web app in a real browser: Debian's Chromium driven by Playwright through its
executable path, against `portal serve` in a process of its own with the demo data, a real
SMTP server on loopback and the Stripe stand-in.

Outside CI a machine without Chromium skips these tests with a line saying how to install
it; in CI (env CI set) they fail instead."""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, Playwright, Request, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from app.db.demo import DEMO_PASSWORD, seed_demo
from app.db.scope import SYSTEM
from app.db.session import Database, create_engine
from app.web import WEB_BUILD
from tests.conftest import BACKENDS, DEMO_TODAY
from tests.databases import PostgresDatabases, SqliteDatabases, run_in_thread
from tests.served import ROOT, Server, served
from tests.smtp import SmtpServer
from tests.stripe_standin import (
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    StandInServer,
    StripeStandIn,
)

CHROMIUM = Path(os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium"))
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
TRUSTED = ROOT / "frontend-contract" / "persisted-documents.json"
# A phone (W4 asks for 360 px and up) and a desktop.
WIDTHS = {"phone": (390, 844), "desktop": (1280, 900)}
# The demo's connected Stripe account for the business every portal demo user is with.
DEMO_ACCOUNT = "acct_demo_acme"
WAIT_MS = 30_000


def _stop(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


# Module-scoped, not session-scoped: Playwright's sync API keeps its event loop marked as
# running on this thread until it stops, which would stop the async tests of later modules.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        _stop(
            f"Chromium is not at {CHROMIUM}: `apt-get install -y chromium` (as root) runs the"
            " browser tests; PORTAL_CHROMIUM names another executable"
        )
    if not (WEB_BUILD / "index.html").is_file() or not AXE.is_file():
        pytest.fail("The portal web app is not built: run `make web` before the browser tests")
    playwright: Playwright = sync_playwright().start()
    try:
        # Root cannot use Chromium's sandbox; nothing but our own pages is opened.
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield launched
        launched.close()
    finally:
        playwright.stop()


def execute(url: str, statement: str, **values: object) -> None:
    """One statement on the served portal's database, as staff or an operator would change it."""

    async def run() -> None:
        db = Database(create_engine(url))
        try:
            async with db.transaction(SYSTEM) as session:
                await session.execute(sa.text(statement), values)
        finally:
            await db.dispose()

    run_in_thread(run)


def _seed_and_connect(url: str) -> None:
    """The demo, with its business paid into a Stripe account, so its invoices take cards."""

    async def seed() -> None:
        db = Database(create_engine(url))
        try:
            await seed_demo(db, today=DEMO_TODAY)
        finally:
            await db.dispose()

    run_in_thread(seed)
    execute(
        url,
        "UPDATE tenants SET stripe_account_id = :account WHERE slug = 'acme'",
        account=DEMO_ACCOUNT,
    )


@dataclass
class Portal:
    database_url: str
    server: Server
    smtp: SmtpServer
    stripe: StripeStandIn

    @property
    def url(self) -> str:
        return self.server.url

    def email_to(self, address: str, *, after: int = 0) -> EmailMessage:
        """The first email to `address` among those accepted after the first `after`."""
        deadline = time.monotonic() + WAIT_MS / 1000
        while time.monotonic() < deadline:
            for message in self.smtp.inbox.messages[after:]:
                if address in str(message["To"]):
                    return message
            time.sleep(0.1)
        raise AssertionError(f"no email reached {address}:\n{self.server.output()[-3000:]}")

    def link_in(self, message: EmailMessage, path: str) -> str:
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        text = body.get_content()
        found = re.search(rf"{re.escape(self.url)}{re.escape(path)}\S*token=[\w.~-]+", text)
        assert found, f"no {path} link in:\n{text}"
        return found.group(0)


@pytest.fixture(scope="module", params=BACKENDS)
def portal(request: pytest.FixtureRequest) -> Iterator[Portal]:
    pool: SqliteDatabases | PostgresDatabases | None = request.getfixturevalue(
        "sqlite_databases" if request.param == "sqlite" else "postgres_databases"
    )
    assert pool is not None
    url = pool.fresh("demo-paid", _seed_and_connect)
    smtp = SmtpServer()
    smtp.start()
    stripe = StandInServer()
    stripe.start()
    environment = {
        "PORTAL_ENV": "test",
        "PORTAL_SMTP_URL": smtp.url,
        "PORTAL_MAIL_WORKER_IN_PROCESS": "true",
        "PORTAL_MAIL_POLL_SECONDS": "0.2",
        "PORTAL_STRIPE_SECRET_KEY": SECRET_KEY,
        "PORTAL_STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
        "PORTAL_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PORTAL_STRIPE_API_BASE": stripe.url,
    }
    try:
        with served(url, environment) as server:
            stripe.stripe.webhook_url = f"{server.url}/webhooks/stripe"
            yield Portal(database_url=url, server=server, smtp=smtp, stripe=stripe.stripe)
    finally:
        stripe.stop()
        smtp.stop()
        pool.drop(url)


@dataclass
class Sent:
    """What the app sent to the portal endpoint."""

    bodies: list[dict[str, Any]] = field(default_factory=list)

    def record(self, request: Request) -> None:
        if request.url.endswith("/portal/graphql") and request.method == "POST":
            self.bodies.append(json.loads(request.post_data or "{}"))


@dataclass
class Screen:
    page: Page
    portal: Portal
    width: int
    sent: Sent

    def go(self, path: str) -> None:
        self.page.goto(f"{self.portal.url}{path}")

    def heading(self, text: str | re.Pattern[str]) -> None:
        try:
            self.page.get_by_role("heading", level=1, name=text).wait_for(timeout=WAIT_MS)
        except PlaywrightError as error:
            alerts = self.page.get_by_role("alert").all_inner_texts()
            raise AssertionError(
                f"no heading {text!r} on {self.page.url}; alerts: {alerts}"
            ) from error

    def nav(self, name: str) -> None:
        """Follows a link of the portal's menu, opening the menu first on a phone."""
        menu = self.page.get_by_role("button", name="Menu")
        if menu.is_visible() and menu.get_attribute("aria-expanded") != "true":
            menu.click()
        self.page.get_by_role("navigation", name="Portal").get_by_role("link", name=name).click()

    def open(self, login: str, name: str | None = None, *, password: str = "") -> None:
        """Signs in, lands on the home screen, then opens the menu's `name` screen."""
        self.sign_in(login, password)
        self.heading(re.compile("^Hello, "))
        if name is not None:
            self.nav(name)
            self.heading(name)

    def sign_out(self) -> None:
        menu = self.page.get_by_role("button", name="Menu")
        if menu.is_visible() and menu.get_attribute("aria-expanded") != "true":
            menu.click()
        self.page.get_by_role("button", name="Sign out", exact=True).click()
        self.heading("Sign in")

    def nav_links(self) -> list[str]:
        menu = self.page.get_by_role("button", name="Menu")
        if menu.is_visible() and menu.get_attribute("aria-expanded") != "true":
            menu.click()
        links = self.page.get_by_role("navigation", name="Portal").get_by_role("link")
        # Without the unread badge of Messages.
        return [re.sub(r"\s*\d+\s+unread$", "", text.strip()) for text in links.all_inner_texts()]

    def sign_in(self, login: str, password: str = "", *, slug: str = "acme") -> None:
        self.go(f"/portal/{slug}")
        self.heading("Sign in")
        self.page.get_by_label("Email or username").fill(login)
        self.page.get_by_label("Password").fill(password or DEMO_PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()

    def fits_and_reads(self) -> None:
        """W4 on the screen shown: no sideways scroll, and axe-core finds no serious or
        critical violation."""
        self.page.wait_for_load_state("networkidle")
        overflow = self.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{self.page.url} scrolls sideways by {overflow}px at {self.width}"
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            # Evaluated by the browser's devtools protocol: the page's CSP does not apply.
            self.page.evaluate(AXE.read_text(encoding="utf-8"))
        results = self.page.evaluate(
            "axe.run(document, {resultTypes: ['violations']})"
            ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact,"
            " nodes: v.nodes.map(n => n.target.join(' '))})))"
        )
        serious = [v for v in results if v["impact"] in ("serious", "critical")]
        assert not serious, f"axe-core on {self.page.url} at {self.width}px: {serious}"


@pytest.fixture(params=list(WIDTHS))
def screen(request: pytest.FixtureRequest, browser: Browser, portal: Portal) -> Iterator[Screen]:
    width, height = WIDTHS[request.param]
    # A browser far from every demo business: a time shown in its zone would be hours off.
    context = browser.new_context(
        viewport={"width": width, "height": height}, timezone_id="Pacific/Auckland"
    )
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    sent = Sent()
    page.on("request", sent.record)
    try:
        yield Screen(page=page, portal=portal, width=width, sent=sent)
    finally:
        context.close()
    # W5: every request named a document of the contract by its id, and carried no text.
    trusted = json.loads(TRUSTED.read_text(encoding="utf-8"))
    for body in sent.bodies:
        assert "query" not in body, body
        assert body.get("documentId") in trusted, body


# The demo's company contact at Harbour View Hotel, a customer of Acme.
COMPANY = "facilities@harbourview.example"


def invite(screen: Screen, portal: Portal) -> tuple[str, str]:
    """The company contact adds a contact with portal access: its address and the link."""
    page = screen.page
    screen.open(COMPANY, "Contacts")
    screen.fits_and_reads()
    page.get_by_role("button", name="Add a contact").click()
    email = f"new.{uuid.uuid4().hex[:8]}@harbourview.example"
    page.get_by_label("Name", exact=True).fill("Nia Newcomer")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Invite them to the portal").check()
    already = len(portal.smtp.inbox.messages)
    page.get_by_role("button", name="Add the contact").click()
    return email, portal.link_in(
        portal.email_to(email, after=already), "/portal/acme/accept-invitation"
    )
