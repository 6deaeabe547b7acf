"""Click tokens: the click's claim encrypted and authenticated (AEAD), with key rotation.

A token carries the impression id, ad, campaign, advertiser, publisher, price in fen, issue time,
landing URL, the user's pseudonym (never the user key), the impression's click-through cell
(page category, matched keyword, slot, relevance band) and, for reports and conversions, the first
matched keyword, the page's top category and a CPA ad's conversion event, all encrypted: a click URL shows
nothing of them. Layout, base64url without padding::

    version (1 byte, 0xA2) | key id (4) | nonce (12) | AES-256-GCM-SIV(claim as a JSON array) + tag (16)

The claim's keyword and category are sealed as null when its click-through cell holds the same
ones, and trailing nulls (and a CPC ad's empty CPA event) are left out, so a CPC token is no
longer than before conversions (:func:`_encode`); a shorter array is an older claim.

The version and key id are the associated data, so neither can be altered either. Each
configured secret (``ADMATCH_CLICK_SECRET_KEYS``, newest last) gives an AES key and its key id by
HKDF-SHA256; tokens are sealed with the newest key and opened with the key their id names, so keys
rotate by appending a new one and dropping the oldest after the click window.

AES-GCM-SIV (RFC 8452) rather than AES-GCM or ChaCha20-Poly1305: every process and replica draws
random 96-bit nonces with no coordination; GCM and ChaCha20-Poly1305 lose confidentiality and
authenticity if a nonce ever repeats under one key (NIST caps random nonces at 2^32 messages a
key: about 16 days at 3,000 tokens a second), GCM-SIV only reveals that two identical claims were
sealed, and claims never repeat (each has its own impression id).

Tokens of the earlier format (itsdangerous-signed readable JSON, "v1") still verify with the
same secrets, so links already on pages keep working through the cut-over; they are past the
click window (recorded ``expired``) an hour after it. TODO(after one release): drop v1.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, URLSafeSerializer

from service.ctr import cells as ctr_cells

SALT = "admatch.click.v1"  # itsdangerous salt of v1 tokens
VERSION = 0xA2
_KDF_INFO = b"admatch.click.v2"
_HEADER = 5  # version + key id
_NONCE = 12
_TAG = 16


class BadClickToken(Exception):
    """The token was not issued by us or was altered."""


@dataclass(frozen=True, slots=True)
class ClickClaim:
    imp: str
    ad: str
    cmp: str
    adv: str
    pub: str
    price: int
    issued: float  # unix seconds
    url: str
    user: str | None = None  # the user's pseudonym (Billing.pseudonym), never the user key
    # the impression's click-through cell: category, keyword, slot, band (service.ctr.cells.context);
    # None in tokens issued before the model existed
    ctx: str | None = None
    # For reports and conversions (absent from tokens sealed before them): the ad's first matched
    # keyword and the page's top category ('' none), and the event a CPA ad was bought for ('' = a
    # CPC ad; then ``price`` is per conversion and the click itself is free).
    kw: str = ""
    cat: str = ""
    cpa: str = ""


_FIELDS = tuple(f.name for f in fields(ClickClaim))  # dataclasses.asdict deep-copies: slower per click
_MIN_FIELDS = _FIELDS.index("user") + 1  # tokens sealed before the click-through cell hold this many
_CTX, _KW, _CAT, _CPA = (_FIELDS.index(n) for n in ("ctx", "kw", "cat", "cpa"))


def _derive(secret: str) -> tuple[bytes, AESGCMSIV]:
    """A secret's key id and AEAD."""
    okm = HKDF(algorithm=hashes.SHA256(), length=36, salt=None, info=_KDF_INFO).derive(secret.encode("utf-8"))
    return okm[32:], AESGCMSIV(okm[:32])


def _ctx_parts(ctx: object) -> tuple[str, str] | None:
    """The (category, keyword) a click-through context holds (service.ctr.cells.context), if any."""
    if not isinstance(ctx, str):
        return None
    parts = ctx.split(ctr_cells.SEP)
    return (parts[0], parts[1]) if len(parts) == 4 else None


def _encode(claim: ClickClaim) -> list[object]:
    """The claim as the JSON array sealed: the keyword and category as null when the click-through
    context holds the same (the usual case: they are one keyword and category), and trailing
    fields left out while they are null or a CPC ad's empty ``cpa`` — a CPC claim is no longer
    than before conversions existed."""
    values: list[object] = [getattr(claim, name) for name in _FIELDS]
    held = _ctx_parts(claim.ctx)
    if held is not None:
        if claim.cat == held[0]:
            values[_CAT] = None
        if claim.kw == held[1]:
            values[_KW] = None
    end = len(values)
    while end > _MIN_FIELDS and (values[end - 1] is None or (end - 1 == _CPA and values[end - 1] == "")):
        end -= 1
    return values[:end]


def _claim(values: object) -> ClickClaim:
    # tokens sealed before ``ctx`` (then before the report fields) existed hold fewer fields; new
    # fields are only ever appended, so a shorter array is an older claim (or one whose tail was
    # left out: see _encode)
    if not isinstance(values, list) or not _MIN_FIELDS <= len(values) <= len(_FIELDS):
        raise ValueError("not a claim")
    values = values + [None] * (len(_FIELDS) - len(values))
    held = _ctx_parts(values[_CTX]) or ("", "")
    if values[_CAT] is None:
        values[_CAT] = held[0]
    if values[_KW] is None:
        values[_KW] = held[1]
    if values[_CPA] is None:
        values[_CPA] = ""
    c = ClickClaim(*values)
    if not isinstance(c.price, int) or not isinstance(c.issued, int | float) or \
            not all(isinstance(v, str) for v in (c.kw, c.cat, c.cpa)):
        raise ValueError("not a claim")
    return c


class ClickSigner:
    """Seals claims into tokens and opens them. ``secret_keys``: newest last."""

    def __init__(self, secret_keys: Sequence[str]) -> None:
        if not secret_keys:
            raise ValueError("at least one click-signing key is needed")
        derived = [_derive(k) for k in secret_keys]
        self._kid, self._aead = derived[-1]
        self._header = bytes([VERSION]) + self._kid
        self._by_kid: dict[bytes, list[AESGCMSIV]] = {}
        for kid, aead in reversed(derived):  # a (2^-32 likely) shared id: try each of its keys
            self._by_kid.setdefault(kid, []).append(aead)
        self._v1 = URLSafeSerializer(list(secret_keys), salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})

    def sign(self, claim: ClickClaim) -> str:
        plain = orjson.dumps(_encode(claim))
        nonce = os.urandom(_NONCE)
        sealed = self._header + nonce + self._aead.encrypt(nonce, plain, self._header)
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def verify(self, token: str) -> ClickClaim:
        """The claim of a token we issued, unaltered; :class:`BadClickToken` for anything else."""
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):  # v1 tokens hold '.', never base64 alone
            return self._verify_v1(token)
        # one spelling per token: unused low bits of the last character set differently are refused
        if len(raw) <= _HEADER + _NONCE + _TAG or raw[0] != VERSION or \
                base64.urlsafe_b64encode(raw).rstrip(b"=") != token.encode("ascii"):
            raise BadClickToken("click token is damaged")
        return self._open(raw)

    def _open(self, raw: bytes) -> ClickClaim:
        header, nonce, sealed = raw[:_HEADER], raw[_HEADER:_HEADER + _NONCE], raw[_HEADER + _NONCE:]
        for aead in self._by_kid.get(header[1:], ()):
            try:
                plain = aead.decrypt(nonce, sealed, header)
            except InvalidTag:
                continue
            try:
                return _claim(orjson.loads(plain))
            except (ValueError, TypeError) as e:  # authentic but not a claim: a bug, never a forgery
                raise BadClickToken("click token does not hold a claim") from e
        raise BadClickToken("click token is forged, altered, damaged or sealed with a retired key")

    def _verify_v1(self, token: str) -> ClickClaim:
        try:
            data = self._v1.loads(token)
            return ClickClaim(**data)
        except (BadSignature, TypeError, ValueError) as e:
            raise BadClickToken("click token is forged, altered or damaged") from e
