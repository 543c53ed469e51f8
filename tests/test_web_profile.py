"""The portal web app's own-account screens (E17 and E18 in W3): my profile, the emailed
email-change link, signing out everywhere and cancelling a request, in Chromium at both
widths. A served portal of their own: each test signs a newcomer in several times, which the
sign-in limit per address would count against the other screens' tests."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from tests.browser import COMPANY, Portal, Screen, browser, invite, portal, screen

__all__ = ["browser", "portal", "screen"]


def _newcomer(screen: Screen, portal: Portal) -> tuple[str, str, str]:
    """A portal user of its own, signed in on the screen: its email, username and password."""
    email, link = invite(screen, portal)
    screen.sign_out()
    page = screen.page
    page.goto(link)
    screen.heading("Set up your portal account")
    username = f"nia{uuid.uuid4().hex[:6]}"
    password = f"newcomer-{uuid.uuid4().hex[:8]}"
    page.get_by_label("Your name").fill("Nia Newcomer")
    page.get_by_label("Username").fill(username)
    page.get_by_label("New password", exact=True).fill(password)
    page.get_by_label("Repeat the new password").fill(password)
    page.get_by_role("button", name="Create my account").click()
    screen.heading("Hello, Nia Newcomer")
    return email, username, password


def test_w3_my_profile_changes_my_name_and_username(screen: Screen, portal: Portal) -> None:
    page = screen.page
    _, username, password = _newcomer(screen, portal)
    screen.nav("My profile")
    screen.heading("My profile")
    # Another user's username is refused, and nothing changes.
    page.get_by_label("Your name").fill("Nia Renamed")
    page.get_by_label("New username").fill("harbourview")
    page.get_by_role("button", name="Save my name and username").click()
    expect(page.get_by_role("alert")).to_have_text("That username is taken: choose another.")
    page.get_by_label("New username").fill("nia@home")
    page.get_by_role("button", name="Save my name and username").click()
    expect(page.get_by_role("alert")).to_have_text("A username cannot hold @.")
    renamed = f"renamed{uuid.uuid4().hex[:6]}"
    page.get_by_label("New username").fill(renamed)
    page.get_by_role("button", name="Save my name and username").click()
    expect(page.get_by_role("status")).to_have_text("Your name and username are saved.")
    expect(page.locator(".facts")).to_contain_text("Nia Renamed")
    screen.fits_and_reads()
    screen.sign_out()
    # The old username no longer signs in; the new one does, and the new name greets.
    screen.sign_in(username, password)
    expect(page.get_by_role("alert")).to_contain_text("do not match an account")
    screen.sign_in(renamed, password)
    screen.heading("Hello, Nia Renamed")


def test_w3_my_email_changes_through_the_emailed_link(screen: Screen, portal: Portal) -> None:
    page = screen.page
    email, _, password = _newcomer(screen, portal)
    screen.nav("My profile")
    screen.heading("My profile")
    new_email = f"moved.{uuid.uuid4().hex[:8]}@harbourview.example"
    page.get_by_label("New email address").fill(new_email)
    page.get_by_label("Your password").fill("not my password")
    page.get_by_role("button", name="Email me a confirmation link").click()
    expect(page.get_by_role("alert")).to_have_text("Your current password is not right.")
    # An address another account signs in with is refused when the link is opened.
    page.get_by_label("New email address").fill(COMPANY)
    page.get_by_label("Your password").fill(password)
    already = len(portal.smtp.inbox.messages)
    page.get_by_role("button", name="Email me a confirmation link").click()
    expect(page.get_by_role("status")).to_contain_text(f"We sent a link to {COMPANY}")
    taken = portal.link_in(portal.email_to(COMPANY, after=already), "/portal/confirm-email")
    page.goto(taken)
    screen.heading("Confirm your new email address")
    expect(page.get_by_role("alert")).to_have_text(
        "Another account already signs in with that address, so yours stays as it was."
    )
    screen.go("/portal/profile")
    screen.heading("My profile")
    page.get_by_label("New email address").fill(new_email)
    page.get_by_label("Your password").fill(password)
    already = len(portal.smtp.inbox.messages)
    page.get_by_role("button", name="Email me a confirmation link").click()
    expect(page.get_by_role("status")).to_contain_text(f"We sent a link to {new_email}")
    screen.fits_and_reads()
    link = portal.link_in(portal.email_to(new_email, after=already), "/portal/confirm-email")
    # Until the link is opened, the account keeps its address.
    page.reload()
    screen.heading("My profile")
    expect(page.locator(".facts")).to_contain_text(email)
    page.goto(link)
    screen.heading("Confirm your new email address")
    expect(page.get_by_role("status")).to_contain_text("Your email address is changed.")
    screen.fits_and_reads()
    told = portal.email_to(email, after=already)
    assert "email address was changed" in str(told["Subject"])
    body = told.get_body(preferencelist=("plain",))
    assert body is not None and new_email in body.get_content()
    page.get_by_role("link", name="Go to my profile").click()
    screen.heading("My profile")
    expect(page.locator(".facts")).to_contain_text(new_email)
    # The link works once.
    page.goto(link)
    expect(page.get_by_role("alert")).to_have_text(
        "This link has expired or was used already. Ask for a new one."
    )
    screen.go("/portal/profile")
    screen.heading("My profile")
    screen.sign_out()
    screen.sign_in(email, password)
    expect(page.get_by_role("alert")).to_contain_text("do not match an account")
    screen.open(new_email, password=password)


def test_w3_sign_out_everywhere_ends_every_session(screen: Screen, portal: Portal) -> None:
    page = screen.page
    email, _, password = _newcomer(screen, portal)
    # A second browser of the same user.
    other_browser = page.context.browser
    assert other_browser is not None
    context = other_browser.new_context(viewport=page.viewport_size)
    try:
        other = Screen(context.new_page(), portal, screen.width, screen.sent)
        other.open(email, password=password)
        screen.nav("My profile")
        screen.heading("My profile")
        page.get_by_role("button", name="Sign out everywhere").click()
        screen.heading("Sign in")
        page.reload()
        screen.heading("Sign in")
        # The other browser's session ended too.
        other.nav("My profile")
        other.page.reload()
        other.heading("Sign in")
    finally:
        context.close()


def test_w3_a_new_request_is_cancelled_with_a_reason(screen: Screen) -> None:
    page = screen.page
    screen.open(COMPANY, "Requests")
    page.get_by_role("link", name="New request").click()
    screen.heading("New request")
    page.get_by_label("A new job").check()
    page.get_by_label("Site", exact=True).select_option(index=1)
    page.get_by_label("What should be done?").fill("Replace the gate latch")
    po = f"PO-{uuid.uuid4().hex[:6]}"
    page.get_by_label("PO number").fill(po)
    page.get_by_role("button", name="Send the request").click()
    screen.heading("Requests")
    row = page.locator(".rows li").filter(has_text=po)
    expect(row.locator(".status")).to_have_text("New")
    row.get_by_role("button", name=re.compile("^Cancel request")).click()
    row.get_by_role("button", name="Cancel the request").click()
    expect(row.get_by_role("alert")).to_have_text("Say why you are cancelling.")
    reason = "We fixed it ourselves"
    row.get_by_label(re.compile("^Why are you cancelling")).fill(reason)
    screen.fits_and_reads()
    row.get_by_role("button", name="Cancel the request").click()
    expect(row.locator(".status")).to_have_text("Cancelled")
    expect(row).to_contain_text(f"Cancelled: {reason}")
    expect(row.get_by_role("button")).to_have_count(0)
    # It stays so when the list is loaded again.
    page.reload()
    screen.heading("Requests")
    row = page.locator(".rows li").filter(has_text=po)
    expect(row.locator(".status")).to_have_text("Cancelled")
    expect(row).to_contain_text(f"Cancelled: {reason}")
