"""The portal web app (W1-W5) in Chromium at a phone's width and at a desktop's, against a
served portal with the demo data: real SMTP on loopback and the Stripe stand-in."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlmodel import col
from strawberry.relay import from_base64

from app.auth.resolve import COOKIE_NAMES
from app.auth.tokens import Audience
from app.db.demo import DEMO_PASSWORD
from app.db.models import Job, JobVisit, Tenant
from app.db.scope import SYSTEM
from app.db.session import Database, create_engine
from app.messages.notices import thread_url
from app.settings import Environment, Settings
from tests.browser import COMPANY, Portal, Screen, browser, execute, invite, portal, screen
from tests.databases import run_in_thread

__all__ = ["browser", "portal", "screen"]

SITE = "site.manager@riverside.example"
NARROWED = "bursar@greenfield.example"
SWITCHED_OFF = "parks@citycouncil.example"
RESET = "ops@maplecourt.example"
OWN_COLOUR = "owen@oakwoodfestival.example"
PORTAL_COOKIE = COOKIE_NAMES[Audience.PORTAL]


def _money(text: str) -> int:
    """£1,234.50 as 123450."""
    digits = re.sub(r"[^\d.]", "", text)
    return round(float(digits) * 100)


def test_w1_sign_in_page_is_branded_by_the_business_slug(screen: Screen) -> None:
    screen.go("/portal/acme")
    screen.heading("Sign in")
    expect(screen.page.locator(".brand-name")).to_have_text("Acme Sanitation")
    accent = screen.page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()"
    )
    assert accent.upper() == "#0F766E"
    screen.fits_and_reads()
    # "Email me a link" and "forgot password" answer alike for any address.
    screen.page.get_by_role("button", name="Email me a link instead").click()
    screen.heading("Email me a sign-in link")
    screen.page.get_by_label("Email", exact=True).fill("nobody@example.com")
    screen.page.get_by_role("button", name="Email me a link").click()
    expect(screen.page.get_by_role("status")).to_contain_text("If that address has a portal")
    screen.fits_and_reads()
    screen.page.get_by_role("button", name="Forgot password?").click()
    screen.heading("Forgot your password?")
    screen.page.get_by_label("Email", exact=True).fill("")
    screen.page.get_by_role("button", name="Email me a reset link").click()
    expect(screen.page.get_by_role("alert")).to_have_text("Enter your email address.")


def test_w1_a_wrong_password_says_so_and_stays_signed_out(screen: Screen) -> None:
    screen.sign_in(COMPANY, "not the password")
    expect(screen.page.get_by_role("alert")).to_contain_text("do not match an account")
    screen.heading("Sign in")


def test_w3_company_contact_lists_invoices_opens_one_and_pays_part(screen: Screen) -> None:
    page = screen.page
    screen.open(COMPANY)
    screen.fits_and_reads()
    screen.nav("Invoices")
    screen.heading("Invoices")
    screen.fits_and_reads()
    page.get_by_label("Unpaid only").check()
    page.locator(".rows li").first.get_by_role("link").click()
    screen.heading(re.compile(r"^Invoice "))
    balance_before = _money(page.get_by_test_id("balance").inner_text())
    assert balance_before > 1000
    screen.fits_and_reads()
    page.get_by_label("Part of it").check()
    page.get_by_label(re.compile(r"^Amount")).fill("10.00")
    page.get_by_role("button", name="Continue to card payment").click()
    expect(page.get_by_role("note")).to_contain_text("TEST MODE")
    screen.fits_and_reads()
    page.get_by_role("button", name=re.compile(r"^Pay £10\.00")).click()
    expect(page.get_by_test_id("balance")).not_to_have_text(
        page.get_by_test_id("balance").inner_text(), timeout=30_000
    )
    assert _money(page.get_by_test_id("balance").inner_text()) == balance_before - 1000
    # The stand-in took exactly this payment, on the business's own account.
    [confirmed] = [c for c in screen.portal.stripe.calls if c.path.endswith("/confirm")][-1:]
    intent = screen.portal.stripe.intents[confirmed.path.split("/")[3]]
    assert (intent["amount"], intent["status"]) == (1000, "succeeded")


def test_w3_site_contact_sees_no_invoices_and_requests_a_service_for_its_site(
    screen: Screen,
) -> None:
    page = screen.page
    screen.open(SITE)
    assert "Invoices" not in screen.nav_links()
    screen.go("/portal/invoices")
    screen.heading("Not available")
    screen.fits_and_reads()
    screen.go("/portal/requests/new")
    screen.heading("New request")
    screen.page.get_by_role("button", name="Send the request").click()
    expect(page.get_by_role("alert")).to_have_text("Choose the site.")
    sites = page.get_by_label("Site", exact=True).locator("option").all_inner_texts()
    assert len(sites) == 2, sites  # "Choose a site" and the contact's own site
    page.get_by_label("Site", exact=True).select_option(index=1)
    page.get_by_label("Service", exact=True).select_option(index=1)
    page.get_by_role("button", name="Send the request").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Pick the rental this is for, or ask for a new one."
    )
    page.get_by_label("Rental").select_option(label="A new rental")
    po = f"PO-{uuid.uuid4().hex[:6]}"
    page.get_by_label("PO number").fill(po)
    screen.fits_and_reads()
    page.get_by_role("button", name="Send the request").click()
    screen.heading("Requests")
    row = page.locator(".rows li").filter(has_text=po)
    expect(row).to_contain_text(sites[1].split(" (")[0])
    expect(row).to_contain_text("New")
    screen.fits_and_reads()


def test_w2_invitation_link_opens_and_signs_in(screen: Screen, portal: Portal) -> None:
    page = screen.page
    _, link = invite(screen, portal)

    # The newcomer opens the link in a browser of their own.
    newcomer = page.context.browser
    assert newcomer is not None
    context = newcomer.new_context(viewport=page.viewport_size)
    try:
        fresh = context.new_page()
        fresh.goto(link)
        fresh.get_by_role("heading", level=1, name="Set up your portal account").wait_for()
        Screen(fresh, portal, screen.width, screen.sent).fits_and_reads()
        fresh.get_by_label("Your name").fill("Nia Newcomer")
        fresh.get_by_label("Username").fill(f"nia{uuid.uuid4().hex[:6]}")
        fresh.get_by_label("New password", exact=True).fill("a long new secret")
        fresh.get_by_label("Repeat the new password").fill("a long new secret")
        fresh.get_by_role("button", name="Create my account").click()
        fresh.get_by_role("heading", level=1, name="Hello, Nia Newcomer").wait_for()
    finally:
        context.close()


def test_w2_password_reset_through_the_emailed_link(screen: Screen, portal: Portal) -> None:
    page = screen.page
    screen.go("/portal/acme")
    page.get_by_role("button", name="Forgot password?").click()
    page.get_by_label("Email", exact=True).fill(RESET)
    already = len(portal.smtp.inbox.messages)
    page.get_by_role("button", name="Email me a reset link").click()
    expect(page.get_by_role("status")).to_contain_text("If that address has a portal account")
    link = portal.link_in(portal.email_to(RESET, after=already), "/portal/reset-password")
    page.goto(link)
    screen.heading("Choose a new password")
    page.get_by_role("button", name="Save the new password").click()
    expect(page.get_by_role("alert")).to_contain_text("at least 8 characters")
    new_password = f"fresh-{uuid.uuid4().hex[:10]}"
    page.get_by_label("New password", exact=True).fill(new_password)
    page.get_by_label("Repeat the new password").fill(new_password)
    screen.fits_and_reads()
    page.get_by_role("button", name="Save the new password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password is changed")
    # The link works once.
    page.goto(link)
    page.get_by_label("New password", exact=True).fill(new_password + "x")
    page.get_by_label("Repeat the new password").fill(new_password + "x")
    page.get_by_role("button", name="Save the new password").click()
    expect(page.get_by_role("alert")).to_contain_text("expired or was used")
    screen.open(RESET, password=new_password)


def test_w2_a_screen_opened_signed_out_signs_in_then_shows_it(screen: Screen) -> None:
    screen.go("/portal/requests")
    screen.heading("Sign in")
    screen.page.get_by_label("Email or username").fill(COMPANY)
    screen.page.get_by_label("Password").fill(DEMO_PASSWORD)
    screen.page.get_by_role("button", name="Sign in").click()
    screen.heading("Requests")
    screen.fits_and_reads()


def test_w3_a_narrowed_user_sees_only_its_modules(screen: Screen) -> None:
    screen.open(NARROWED)
    assert screen.nav_links() == ["Home", "Invoices", "Requests", "Messages", "My profile"]
    screen.fits_and_reads()
    for path in ("/portal/quotes", "/portal/jobs", "/portal/contacts", "/portal/certificates"):
        screen.go(path)
        screen.heading("Not available")
    screen.go("/portal/requests")
    screen.heading("Requests")
    screen.fits_and_reads()


def test_w3_a_switched_off_portal_says_why(screen: Screen) -> None:
    screen.sign_in(SWITCHED_OFF)
    expect(screen.page.get_by_role("alert")).to_contain_text("The portal is switched off")
    screen.heading("Sign in")
    screen.fits_and_reads()


def test_w3_a_portal_switched_off_mid_session_says_why(screen: Screen, portal: Portal) -> None:
    screen.open(OWN_COLOUR)
    switch = "UPDATE customers SET portal_enabled = :on WHERE name = 'Oakwood Festival Events'"
    execute(portal.database_url, switch, on=False)
    try:
        screen.nav("Jobs")
        screen.heading("The portal is switched off")
        screen.fits_and_reads()
    finally:
        execute(portal.database_url, switch, on=True)


def test_w3_every_screen_of_a_company_contact_loads_and_reads(screen: Screen) -> None:
    screen.open(COMPANY)
    for name in screen.nav_links()[1:]:
        screen.nav(name)
        screen.heading(name)
        expect(screen.page.get_by_role("status").filter(has_text="Loading")).to_have_count(0)
        screen.fits_and_reads()


def test_w5_the_app_is_served_with_history_fallback_caching_and_a_strict_policy(
    portal: Portal,
) -> None:
    page = httpx.get(f"{portal.url}/portal/invoices/anything")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-cache"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self' https://js.stripe.com;" in policy
    assert "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["referrer-policy"] == "same-origin"
    [script] = re.findall(r'src="(/portal/assets/[^"]+\.js)"', page.text)
    asset = httpx.get(f"{portal.url}{script}")
    assert asset.status_code == 200
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert asset.headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{portal.url}/portal/assets/nothing.js").status_code == 404
    # No way out of the build's assets folder.
    escape = httpx.get(f"{portal.url}/portal/assets/..%2F..%2F..%2Fapp%2Fweb.py")
    assert "WEB_BUILD" not in escape.text
    # The GraphQL endpoint and the magic-link page keep their own answers.
    assert "Sign in to your portal" in httpx.get(f"{portal.url}/portal/magic-link?token=x").text


def test_w2_magic_link_opens_and_signs_in(screen: Screen, portal: Portal) -> None:
    page = screen.page
    screen.go("/portal/acme")
    page.get_by_role("button", name="Email me a link instead").click()
    page.get_by_label("Email", exact=True).fill(COMPANY)
    already = len(portal.smtp.inbox.messages)
    page.get_by_role("button", name="Email me a link").click()
    link = portal.link_in(portal.email_to(COMPANY, after=already), "/portal/magic-link")
    page.goto(link)
    page.get_by_role("button", name="Sign in").click()
    screen.heading(re.compile("^Hello, "))
    assert page.url.rstrip("/").endswith("/portal")
    screen.fits_and_reads()


def test_w3_an_ended_session_gets_a_page_saying_so(screen: Screen, portal: Portal) -> None:
    screen.open(COMPANY)
    # The session the cookie named is over (here: a cookie no session ever had).
    [cookie] = [c for c in screen.page.context.cookies() if c["name"] == PORTAL_COOKIE]
    screen.page.context.add_cookies(
        [
            {
                "name": cookie["name"],
                "value": "ended",
                "domain": cookie["domain"],
                "path": cookie["path"],
                "secure": cookie["secure"],
                "httpOnly": cookie["httpOnly"],
                "sameSite": cookie["sameSite"],
            }
        ]
    )
    screen.nav("Invoices")
    screen.heading("Your session has ended")
    screen.fits_and_reads()
    screen.page.get_by_role("link", name="Go to the sign-in page").click()
    screen.heading("Sign in")


def test_w3_a_sent_quote_is_approved_or_declined_from_its_screen(
    screen: Screen, portal: Portal
) -> None:
    # The demo's sent quote, sent again: the phone approves it, the desktop declines it.
    execute(
        portal.database_url,
        "UPDATE quotes SET status = 'SENT', decided_at = NULL, decided_by_account_id = NULL"
        " WHERE number = 'Q-4002'",
    )
    decision, outcome = (
        ("Approve the quote", "Approved") if screen.width < 600 else ("Decline it", "Declined")
    )
    page = screen.page
    screen.open(COMPANY, "Quotes")
    page.get_by_role("link", name=re.compile("^Quote Q-4002")).click()
    screen.heading("Quote Q-4002")
    expect(page.locator(".facts")).to_contain_text("Sent")
    screen.fits_and_reads()
    page.get_by_role("button", name=decision).click()
    expect(page.locator(".facts")).to_contain_text(outcome)
    expect(page.locator(".facts")).to_contain_text("Decided")
    expect(page.get_by_role("button", name=decision)).to_have_count(0)


def test_w3_a_company_contact_adds_a_property(screen: Screen) -> None:
    page = screen.page
    screen.open(COMPANY, "Properties")
    page.get_by_role("button", name="Add a property").click()
    page.get_by_role("button", name="Add the property").click()
    expect(page.get_by_role("alert")).to_have_text("Give the property a name.")
    name = f"Beach kiosk {uuid.uuid4().hex[:6]}"
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Address line 1").fill("1 Esplanade")
    page.get_by_label("Postcode").fill("PO5 3AA")
    screen.fits_and_reads()
    page.get_by_role("button", name="Add the property").click()
    expect(page.locator(".rows li").filter(has_text=name)).to_contain_text("1 Esplanade, PO5 3AA")


def _first_visit(database_url: str, job_number: str) -> datetime:
    async def read() -> datetime:
        db = Database(create_engine(database_url))
        try:
            async with db.session(SYSTEM) as session:
                starts = await session.scalar(
                    sa.select(col(JobVisit.starts_at))
                    .join(Job, col(Job.id) == col(JobVisit.job_id))
                    .where(col(Job.number) == job_number)
                    .order_by(col(JobVisit.starts_at))
                    .limit(1)
                )
        finally:
            await db.dispose()
        assert starts is not None
        return starts

    return run_in_thread(read)


def test_w4_times_show_in_the_business_time_zone_not_the_browsers(
    screen: Screen, portal: Portal
) -> None:
    zone = "America/New_York"
    switch = "UPDATE tenants SET time_zone = :zone WHERE slug = 'acme'"
    execute(portal.database_url, switch, zone=zone)
    try:
        local = _first_visit(portal.database_url, "J-3002").astimezone(ZoneInfo(zone))
        page = screen.page
        screen.open(COMPANY, "Jobs")
        page.get_by_role("link", name=re.compile("^Job J-3002")).click()
        screen.heading("Job J-3002")
        expect(page.locator(".rows li").first).to_contain_text(
            f"{local.day} {local:%b %Y}, {local:%H:%M} to"
        )
    finally:
        execute(portal.database_url, switch, zone="Europe/London")


def test_w3_a_certificate_downloads_from_its_list(screen: Screen) -> None:
    page = screen.page
    screen.open(COMPANY, "Certificates")
    screen.fits_and_reads()
    link = page.get_by_role("link", name=re.compile("^Download certificate ")).first
    with page.expect_download() as download:
        link.click()
    saved = download.value.path()
    assert saved.stat().st_size > 0
    assert download.value.suggested_filename


def test_w3_portal_users_are_invited_and_invited_again(screen: Screen, portal: Portal) -> None:
    page = screen.page
    screen.open(COMPANY, "Portal users")
    screen.fits_and_reads()
    page.get_by_role("button", name="Add a portal user").click()
    page.get_by_role("button", name="Invite them").click()
    expect(page.get_by_role("alert")).to_have_text("Enter their name.")
    email = f"user.{uuid.uuid4().hex[:8]}@harbourview.example"
    name = f"Una {uuid.uuid4().hex[:4]}"
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Invoices").check()
    already = len(portal.smtp.inbox.messages)
    page.get_by_role("button", name="Invite them").click()
    first = portal.email_to(email, after=already)
    row = page.locator(".rows li").filter(has_text=email)
    expect(row).to_contain_text("Access: Invoices")
    screen.fits_and_reads()
    after_first = len(portal.smtp.inbox.messages)
    row.get_by_role("button", name=f"Resend the invitation to {name}").click()
    expect(page.get_by_role("status")).to_contain_text(f"A new invitation is on its way to {name}")
    second = portal.email_to(email, after=after_first)
    assert portal.link_in(second, "/portal/acme/accept-invitation") != portal.link_in(
        first, "/portal/acme/accept-invitation"
    )


def test_w3_my_profile_changes_my_password(screen: Screen) -> None:
    page = screen.page
    screen.open(OWN_COLOUR, "My profile")
    new_password = f"changed-{uuid.uuid4().hex[:8]}"
    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password", exact=True).fill(new_password)
    page.get_by_label("Repeat the new password").fill(new_password)
    page.get_by_role("button", name="Change my password").click()
    expect(page.get_by_role("alert")).to_have_text("Your current password is not right.")
    page.get_by_label("Current password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Change my password").click()
    expect(page.get_by_role("status")).to_have_text("Your password is changed.")
    expect(page.get_by_label("Current password")).to_have_value("")
    screen.fits_and_reads()
    screen.sign_out()
    screen.sign_in(OWN_COLOUR, "not my password")
    expect(page.get_by_role("alert")).to_contain_text("do not match an account")
    screen.open(OWN_COLOUR, password=new_password)
    screen.nav("My profile")
    # Back to the demo's password, which only the new one now opens.
    page.get_by_label("Current password").fill(new_password)
    page.get_by_label("New password", exact=True).fill(DEMO_PASSWORD)
    page.get_by_label("Repeat the new password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Change my password").click()
    expect(page.get_by_label("Current password")).to_have_value("")
    expect(page.get_by_role("status")).to_have_text("Your password is changed.")


STAFF_WRITER = "manager@acme.example"
STAFF_SEND = (
    "mutation($about: ID!, $body: String!) { sendMessage(about: $about, body: $body) { id } }"
)


def _staff(portal: Portal, query: str, token: str | None = None, **variables: object) -> Any:
    """A staff GraphQL operation over HTTP, as the office's dashboard sends it."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        f"{portal.url}/graphql",
        json={"query": query, "variables": variables},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]


def _unread(screen: Screen) -> int:
    """The menu's unread count (0 when it shows no badge)."""
    badge = screen.page.locator("#nav .badge")
    if badge.count() == 0:
        return 0
    found = re.fullmatch(r"(\d+) unread", " ".join((badge.text_content() or "").split()))
    assert found, badge.text_content()
    return int(found.group(1))


def _harbour_thread(portal: Portal) -> tuple[str, dict[str, Any]]:
    """A bearer token of a signed-in office manager, and the demo conversation with Harbour
    View Hotel as the staff API gives it."""
    signed = _staff(
        portal,
        'mutation($email: String!, $password: String!) { signIn(tenant: "acme",'
        " email: $email, password: $password, client: MOBILE) { tokens { accessToken } } }",
        email=STAFF_WRITER,
        password=DEMO_PASSWORD,
    )
    token = signed["signIn"]["tokens"]["accessToken"]
    threads = _staff(
        portal,
        "{ messageThreads(first: 50) { edges { node { id title customer { name } } } } }",
        token,
    )
    [thread] = [
        edge["node"]
        for edge in threads["messageThreads"]["edges"]
        if edge["node"]["customer"]["name"] == "Harbour View Hotel"
    ]
    return token, thread


def test_w3_messages_are_read_written_and_arrive_live(screen: Screen, portal: Portal) -> None:
    page = screen.page
    marker = uuid.uuid4().hex[:8]
    token, thread = _harbour_thread(portal)
    # The office writes before the contact signs in: the menu counts it.
    _staff(portal, STAFF_SEND, token, about=thread["id"], body=f"Gate code is 4{marker}")
    screen.open(COMPANY)
    expect(page.locator("#nav .badge")).to_have_text(re.compile(r"^\d+ unread$"))
    before = _unread(screen)
    assert before >= 1
    screen.nav("Messages")
    screen.heading("Messages")
    row = page.locator(".rows li").filter(has_text=thread["title"])
    expect(row).to_contain_text(f"{before} unread")
    screen.fits_and_reads()
    row.get_by_role("link", name=thread["title"]).click()
    screen.heading(thread["title"])
    shown = page.get_by_role("list", name="Messages")
    expect(shown.locator("li").filter(has_text=f"Gate code is 4{marker}")).to_contain_text(
        "Acme Sanitation"
    )
    # Opening the conversation read it: the menu's count went down.
    expect(page.locator("#nav .badge")).to_have_count(0)
    screen.fits_and_reads()
    # Nothing written, or too much, is said before anything is sent.
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("alert")).to_have_text("Write a message first.")
    page.get_by_label("Your message").fill("x" * 4001)
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("alert")).to_contain_text("up to 4000 characters")
    # What the server refuses is said, and the text stays to be put right.
    page.get_by_label("Your message").fill("Ring ahead\tplease")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("alert")).to_contain_text("no tabs, control characters")
    expect(page.get_by_label("Your message")).to_have_value("Ring ahead\tplease")
    page.get_by_label("Your message").fill(f"Please ring ahead {marker}\nThe barrier is slow.")
    page.get_by_role("button", name="Send").click()
    mine = shown.locator("li").filter(has_text=f"Please ring ahead {marker}")
    expect(mine).to_contain_text("You ·")
    expect(mine).to_contain_text("The barrier is slow.")
    expect(page.get_by_label("Your message")).to_have_value("")
    # The office answers while the page is open: it shows up without a reload.
    _staff(portal, STAFF_SEND, token, about=thread["id"], body=f"Noted {marker}, thanks")
    expect(shown.locator("li").filter(has_text=f"Noted {marker}, thanks")).to_contain_text(
        "Acme Sanitation"
    )
    expect(shown.locator("li").filter(has_text=f"Please ring ahead {marker}")).to_have_count(1)
    # Seen on the open page, it is read: the menu has no count and the list none either.
    expect(page.locator("#nav .badge")).to_have_count(0)
    # The list is read afresh each time it opens; reading the thread is a request of its
    # own, so the list may be opened before the server has counted it read.
    row = page.locator(".rows li").filter(has_text=thread["title"])
    screen.nav("Messages")
    for _ in range(20):
        screen.heading("Messages")
        expect(row).to_have_count(1)
        if "unread" not in (row.text_content() or ""):
            break
        page.wait_for_timeout(250)
        page.reload()
    expect(row).not_to_contain_text("unread")
    assert _unread(screen) == 0


def test_w3_an_emailed_message_link_signs_in_then_opens_the_thread(
    screen: Screen, portal: Portal
) -> None:
    _, thread = _harbour_thread(portal)
    kind, thread_id = from_base64(thread["id"])
    assert kind == "MessageThread"
    settings = Settings(env=Environment.TEST, portal_app_url=f"{portal.url}/portal")
    link = thread_url(settings, Tenant(slug="acme", name="Acme Sanitation"), uuid.UUID(thread_id))
    assert link.startswith(f"{portal.url}/portal/acme/messages/")
    page = screen.page
    page.goto(link)
    screen.heading("Sign in")
    expect(page.locator(".brand-name")).to_have_text("Acme Sanitation")
    page.get_by_label("Email or username").fill(COMPANY)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    screen.heading(thread["title"])
    expect(page.get_by_role("list", name="Messages").locator("li").first).to_be_visible()
    # Signed in already, the same link opens it straight away.
    page.goto(link)
    screen.heading(thread["title"])
