"""The names people are known by: emails and display names, as they are accepted.

They are shown to admins in the approval queue, the audit log and webhooks, so they must read
as what they are. An email is ASCII (an internationalised domain is given in its ``xn--``
form): a Cyrillic "a" (U+0430) in a domain would pass for the Latin one. A display name may
be in any script, but holds no control characters (terminal escape sequences, BEL), no format
characters (U+202E RIGHT-TO-LEFT OVERRIDE makes ``evil<U+202E>gro.elpmaxe`` display as
``evilexample.org``; zero-width characters), nothing private or unassigned. Both are refused
with a 422 rather than quietly cleaned: the person sees what was wrong.
"""

from __future__ import annotations

import re
import unicodedata

from app.errors import Unprocessable

# RFC 5322 dot-atom local part; LDH domain labels, at least two, the last not numeric.
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_EMAIL = 320
# Control (Cc), format (Cf), surrogate (Cs), private use (Co), unassigned (Cn); line and
# paragraph separators (Zl, Zp).
_NOT_IN_NAMES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def normalise_email(email: str) -> str:
    """``email`` with its domain in lower case, or ``Unprocessable(invalid_email)``."""
    email = email.strip()
    local, at, domain = email.rpartition("@")
    domain = domain.lower()
    labels = domain.split(".")
    valid = (
        bool(at)
        and len(email) <= MAX_EMAIL
        and email.isascii()
        and 1 <= len(local) <= 64
        and _LOCAL.match(local) is not None
        and len(domain) <= 253
        and len(labels) >= 2
        and all(_LABEL.match(label) for label in labels)
        and not labels[-1].isdigit()
    )
    if not valid:
        shown = "".join(c if " " <= c <= "~" else "?" for c in email[:80])
        raise Unprocessable(
            f"{shown!r} is not an email address this server accepts: ASCII only (give an "
            "internationalised domain in its xn-- form), no trailing dot",
            code="invalid_email",
        )
    return f"{local}@{domain}"


def clean_name(name: str, *, what: str = "name", blank: bool = True) -> str:
    """``name`` in NFC with its spaces collapsed, or ``Unprocessable(invalid_name)`` if it
    holds a character that could make it read as something else."""
    name = unicodedata.normalize("NFC", name)
    bad = next((c for c in name if unicodedata.category(c) in _NOT_IN_NAMES), None)
    if bad is not None:
        raise Unprocessable(
            f"{what} contains U+{ord(bad):04X} ({unicodedata.name(bad, 'unnamed')}), which "
            "is not allowed in names",
            code="invalid_name",
        )
    name = " ".join(name.split())
    if not name and not blank:
        raise Unprocessable(f"{what} must not be blank", code="invalid_name")
    return name
