"""Checks on what people type, shared by every form that takes it."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


def normalised_email(value: str | None) -> str | None:
    """The address in its stored form (lower case), or None when it is not a valid one."""
    if not value or not value.strip():
        return None
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.normalized.lower()
