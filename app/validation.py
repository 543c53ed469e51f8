"""Checks on what people type, shared by every form that takes it.

Text people type ends up in emails, PDFs, logs and other people's screens. It holds no
control character: a CR or LF would start a new header or log line, a NUL ends a string in
C, and the others do nothing visible. Nor the bidirectional overrides and isolates (U+202A
to U+202E, U+2066 to U+2069), which show text in an order other than its own (a link that
reads backwards), nor the Unicode line and paragraph separators. Multi-line text (notes,
descriptions) may hold line breaks; CR LF is kept as LF.
"""

from __future__ import annotations

import re
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email

from app.errors import AppError

# Separators people type between digit groups; anything else makes it not a phone number.
_PHONE = re.compile(r"\+?[0-9][0-9 ()./-]*")
_PHONE_DIGITS = range(7, 16)  # E.164 allows at most 15 digits
_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
_IDENTIFIER = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Stripe's connected account ids: `acct_` and letters and digits, within the 255 we store.
_STRIPE_ACCOUNT = re.compile(r"acct_[A-Za-z0-9]{1,250}")
# ISO 4217's current codes for money a business invoices in: neither the fund codes
# (BOV, CHE, CLF, USN...) nor the metals, drawing rights and testing codes (XAU, XDR, XTS...).
_CURRENCIES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
    KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP
    MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR
    RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT
    TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER
    ZAR ZMW ZWG
    """.split()  # noqa: SIM905  (a table to read, not a list to scroll)
)
# The zones of the IANA database this machine carries, read once.
_TIME_ZONES = frozenset(available_timezones())
_DIRECTION = "\u202a-\u202e\u2066-\u2069"
_NOT_IN_A_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_DIRECTION}\u2028\u2029]")
_NOT_IN_TEXT = re.compile(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{_DIRECTION}\u2028\u2029]")


def normalised_email(value: str | None) -> str | None:
    """The address in its stored form (lower case), or None when it is not a valid one."""
    if not value or not value.strip():
        return None
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.normalized.lower()


def checked_email(value: str | None, *, field: str = "email") -> str | None:
    """An optional email as stored: blank is none, anything else must be valid."""
    if value is None or not value.strip():
        return None
    email = normalised_email(value)
    if email is None:
        raise AppError("That is not a valid email address.", field=field)
    return email


def checked_phone(value: str | None, *, field: str = "phone") -> str | None:
    """An optional phone number as typed, trimmed: 7 to 15 digits, an optional leading +,
    and only spaces, brackets, dots and dashes between them."""
    if value is None or not value.strip():
        return None
    phone = " ".join(plain_text(value, field=field).split())
    digits = sum(character.isdigit() for character in phone)
    if not _PHONE.fullmatch(phone) or digits not in _PHONE_DIGITS:
        raise AppError("That is not a valid phone number.", field=field)
    return phone


def plain_text(value: str, *, field: str, multiline: bool = False) -> str:
    """`value` when it holds only characters that show as themselves (and line breaks, in
    multi-line text); otherwise INVALID_INPUT on `field`."""
    if multiline:
        value = value.replace("\r\n", "\n")
        if _NOT_IN_TEXT.search(value):
            raise AppError(
                "Use only line breaks besides printed characters: no tabs, control"
                " characters or text-direction marks.",
                field=field,
            )
    elif _NOT_IN_A_LINE.search(value):
        raise AppError(
            "Keep this to one line of printed characters: no line breaks, tabs, control"
            " characters or text-direction marks.",
            field=field,
        )
    return value


def one_line(text: str) -> str:
    """`text` cleaned to one line of printed characters, for text that was not typed into a
    form but must not break a line (an email's subject): whatever would break or reorder it
    becomes a space, and runs of spaces one."""
    return " ".join(_NOT_IN_A_LINE.sub(" ", text).split())


def limited_text(value: str | None, *, field: str, max_length: int, multiline: bool = False) -> str:
    """Text that may be blank, trimmed, plain and not longer than its column."""
    text = plain_text((value or "").strip(), field=field, multiline=multiline)
    if len(text) > max_length:
        raise AppError(f"Keep this to {max_length} characters.", field=field)
    return text


def checked_text(value: str | None, *, field: str, max_length: int, multiline: bool = False) -> str:
    """Required text, trimmed, not blank, plain and not longer than its column."""
    text = (value or "").strip()
    if not text:
        raise AppError("This cannot be blank.", field=field)
    if len(text) > max_length:
        raise AppError(f"This is longer than {max_length} characters.", field=field)
    return plain_text(text, field=field, multiline=multiline)


def optional_text(
    value: str | None, *, field: str, max_length: int, multiline: bool = False
) -> str | None:
    if value is None or not value.strip():
        return None
    return checked_text(value, field=field, max_length=max_length, multiline=multiline)


def checked_colour(value: str | None, *, field: str = "accentColour") -> str | None:
    """An accent colour as `#RRGGBB` (stored in lower case); it ends up in CSS, so nothing
    else is let through."""
    if value is None:
        return None
    if not _COLOUR.fullmatch(value.strip()):
        raise AppError("Give the colour as #RRGGBB, for example #2f5d8a.", field=field)
    return value.strip().lower()


def checked_identifier(value: str, *, field: str = "portalIdentifier") -> str:
    """A portal identifier: part of an address, so lower-case letters, digits and inner
    dashes, at most 63 characters."""
    identifier = value.strip().lower()
    if not _IDENTIFIER.fullmatch(identifier):
        raise AppError(
            "Use lower-case letters, digits and dashes (not at either end), up to 63.",
            field=field,
        )
    return identifier


def checked_stripe_account(value: str | None, *, field: str = "stripeAccountId") -> str | None:
    """A Stripe connected account id as pasted, trimmed; None stays None (no account)."""
    if value is None:
        return None
    account = value.strip()
    if not _STRIPE_ACCOUNT.fullmatch(account):
        raise AppError(
            "Give the Stripe account id as shown in Stripe, such as acct_1A2b3C4d5E6f7G8h.",
            field=field,
        )
    return account


def identifier_from(name: str) -> str:
    """A portal identifier made from a name: 'Harbour View Hotel' -> 'harbour-view-hotel'."""
    words = re.findall(r"[a-z0-9]+", name.lower())
    return "-".join(words)[:50].strip("-") or "customer"


def checked_time_zone(value: str | None, *, field: str = "timeZone") -> str:
    """An IANA time zone name exactly as the database spells it (Europe/London)."""
    zone = (value or "").strip()
    if zone not in _TIME_ZONES:
        raise AppError("Give an IANA time zone, for example Europe/London.", field=field)
    return zone


def checked_currency(value: str | None, *, field: str = "currency") -> str:
    """An ISO 4217 currency code, stored in upper case (GBP)."""
    code = (value or "").strip().upper()
    if code not in _CURRENCIES:
        raise AppError("Give an ISO 4217 currency code, for example GBP.", field=field)
    return code
