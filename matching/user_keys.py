"""Personal data refused as a user key: the API wants an opaque, hashed id (e.g. a hashed cookie id).

Contract: :func:`personal_data_kind` names what ``value`` looks like — ``"a mobile phone number"``,
``"a national ID number"`` or ``"an e-mail address"`` — or returns None. Recognised:

- Chinese mobile numbers ``1[3-9]`` + 9 digits, optionally after ``+86`` / ``0086`` / ``86``, with
  spaces or hyphens between groups;
- PRC resident ID numbers (GB 11643): 18 characters, a province code, a real date of birth and
  the ISO 7064 MOD 11-2 check digit (``X`` = 10) — all three, so numeric ids of 18 digits rarely
  match (a random one about 1 in 70,000);
- e-mail addresses (``local@domain.tld``).

Hex digests, UUIDs and other opaque ids pass.
"""

from __future__ import annotations

import re
from datetime import date

_PHONE = re.compile(r"(?:\+?86|0086)?1[3-9]\d{9}")
_PHONE_SEPARATORS = re.compile(r"[\s\-()]")
_ID = re.compile(r"(\d{6})(\d{4})(\d{2})(\d{2})\d{3}[\dXx]")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]{2,}")
# First two digits of the administrative division code (provinces, HK, MO, TW).
_PROVINCES = frozenset({11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45,
                        46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83, 91})
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits."""
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def _is_national_id(v: str) -> bool:
    m = _ID.fullmatch(v)
    if m is None or int(v[:2]) not in _PROVINCES:
        return False
    try:
        born = date(int(m[2]), int(m[3]), int(m[4]))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= date(2100, 1, 1) and id_check_digit(v[:17]) == v[17].upper()


def personal_data_kind(value: str) -> str | None:
    """What personal data ``value`` is, or None for an opaque id."""
    v = value.strip()
    if _PHONE.fullmatch(_PHONE_SEPARATORS.sub("", v)):
        return "a mobile phone number"
    if _is_national_id(v):
        return "a national ID number"
    if _EMAIL.fullmatch(v):
        return "an e-mail address"
    return None
