"""Normalisation of identifiers before they are compared: Column in, Column out.

Emails: trimmed and lower-cased (the whole address, local part included: mail
providers treat ``John.Doe@x`` and ``john.doe@x`` as one mailbox in practice). An
address that does not look like ``local@domain.tld`` afterwards is invalid.

Phones, to E.164 (``+`` and 8 to 15 digits):

* a national trunk ``(0)`` written after the country code is dropped (``+44 (0)20 …``);
* every character but the digits is dropped (spaces, dashes, dots, brackets);
* written with a leading ``+``: the digits are the full number;
* a leading ``00`` (the international prefix of most countries) becomes ``+``;
* a leading single ``0`` is a national number: it becomes ``+<default country code>``
  followed by the digits after the 0;
* any other digits are taken as a full number that lacks its ``+``.

What it does **not** handle: national numbers of a country other than the default
(there is no per-persona country lookup), national numbers without a trunk 0 (the US
``(555) 123-4567`` is read as a full number, which is wrong), international prefixes
other than 00 (011 from North America), extensions (``ext. 12`` digits are appended),
letters in vanity numbers, and checking that a number exists (no numbering-plan
data, as libphonenumber has). Emails: no provider-specific rules (Gmail's dots and
``+tags``), no IDN or quoted local parts.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from segengine.contract import EMAIL_PATTERN

E164_MIN_DIGITS = 8
E164_MAX_DIGITS = 15


def normalise_email(email: Column) -> Column:
    """Trimmed, lower-cased email; null when blank.

    Args:
        email: a string column.

    Returns:
        A string column (validity is :func:`email_is_valid`).
    """
    value = F.lower(F.trim(email))
    return F.when(value != "", value)


def email_is_valid(normalised: Column) -> Column:
    """True when a normalised email looks like ``local@domain.tld``."""
    return normalised.rlike(EMAIL_PATTERN)


def normalise_phone(phone: Column, default_country_code: str) -> Column:
    """The phone number in E.164 (``+4915112345678``) or null when blank or not 8-15 digits.

    Args:
        phone: a string column, in any common written form.
        default_country_code: calling code (digits, e.g. ``"49"``) of national numbers.

    Returns:
        A string column: ``+`` and the digits, or null.
    """
    cc = default_country_code.strip().lstrip("+")
    text = F.regexp_replace(F.trim(phone), r"\(0\)", "")
    digits = F.regexp_replace(text, r"[^0-9]", "")
    international = text.rlike(r"^[\s(]*\+")
    e164 = (
        F.when(international, F.concat(F.lit("+"), digits))
        .when(digits.startswith("00"), F.concat(F.lit("+"), F.substring(digits, 3, 64)))
        .when(digits.startswith("0"), F.concat(F.lit("+" + cc), F.substring(digits, 2, 64)))
        .otherwise(F.concat(F.lit("+"), digits))
    )
    n = F.length(e164) - 1
    return F.when(n.between(E164_MIN_DIGITS, E164_MAX_DIGITS) & ~e164.startswith("+0"), e164)


def normalise_cookie(cookie: Column) -> Column:
    """A cookie or device id: trimmed (ids are case-sensitive), null when blank."""
    value = F.trim(cookie)
    return F.when(value != "", value)
