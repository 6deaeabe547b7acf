"""Privacy through the HTTP API: sealed click tokens, pseudonymous frequency keys, personal data
refused as user keys, /metrics behind a key, trusted hosts, CSV cells that cannot run formulas.

Uses the one-ad index and world of tests/test_clicks_http.py.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import hashlib
import hmac
import io
import json
import logging

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeSerializer
from pydantic import SecretStr

from service.app import create_app
from service.billing import reports
from service.billing.clicks import SALT, BadClickToken, ClickClaim, ClickSigner
from service.store import keys
from tests.conftest import ADMIN_KEY, auth
from tests.helpers import assert_error
from tests.test_clicks_http import (  # noqa: F401 - fixtures
    AD,
    NEW_KEY,
    OLD_KEY,
    PAGE,
    app,
    base_settings,
    fast_client,
    index_dir,
    ledger_reasons,
    token_of,
    world,
)

OPAQUE_USER = "u7Kq2mZx9PcLw4Rt"


def raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


# ---- click tokens -----------------------------------------------------------------------------

def test_a_click_url_shows_no_user_key_price_or_id(fast_client, world):
    """Neither the click URL nor its token's decoded bytes contain the user key, the price, the ids or the landing URL."""
    w = world(fast_client)
    ad = w.one_ad(user_key=OPAQUE_USER)
    url, token = ad["click_url"], token_of(ad["click_url"])
    data = raw(token)
    secrets = [OPAQUE_USER, ad["impression_id"], ad["ad_id"], ad["campaign_id"], "adv-tel", w.pub_id,
               AD["landing_url"], "example.com"]
    for s in secrets:
        assert s not in url and s.encode() not in data, s
    for form in (f":{ad['price_fen']},", f",{ad['price_fen']},", '"price"', '"user"'):
        assert form.encode() not in data
    assert data[0] == 0xA2 and len(token) < 300
    claim = ClickSigner([OLD_KEY]).verify(token)  # and yet it holds all of them
    assert (claim.imp, claim.price, claim.cmp, claim.url) == \
        (ad["impression_id"], ad["price_fen"], ad["campaign_id"], AD["landing_url"])
    assert claim.user is not None and OPAQUE_USER not in claim.user  # a pseudonym even inside


def test_every_single_byte_change_to_a_token_is_refused():
    """Flipping any bit of any byte — version, key id, nonce, ciphertext or tag — makes the token invalid."""
    signer = ClickSigner([OLD_KEY])
    claim = ClickClaim(imp="a" * 32, ad="ad-1", cmp="cmp-1", adv="adv-1", pub="pub-1", price=120,
                       issued=1_764_800_000.25, url="https://example.com/x", user="b" * 32)
    data = bytearray(raw(signer.sign(claim)))
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            forged = bytearray(data)
            forged[i] ^= bit
            with pytest.raises(BadClickToken):
                signer.verify(base64.urlsafe_b64encode(bytes(forged)).rstrip(b"=").decode())
    for damaged in ("", "A", signer.sign(claim)[:-5], signer.sign(claim) + "A", "not a token!"):
        with pytest.raises(BadClickToken):
            signer.verify(damaged)


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(ctx=st.one_of(st.none(), st.builds(lambda c, k, slot, band: f"{c}\x1f{k}\x1f{slot}\x1f{band}",
                                        _text, _text, st.integers(0, 9), st.integers(0, 9)), _text),
       kw=_text, cat=_text, cpa=st.sampled_from(["", "order", "lead"]), same=st.booleans())
def test_every_claim_round_trips_whatever_its_context_keyword_category_and_cpa_event(ctx, kw, cat, cpa, same):
    """Sealing and opening gives back the very claim: with or without the click-through context, with
    the keyword and category it holds or others, for CPC ('' event) and CPA ads."""
    if same and ctx is not None and ctx.count("\x1f") == 3:
        cat, kw = ctx.split("\x1f")[:2]
    claim = ClickClaim(imp="d" * 32, ad="ad", cmp="cmp", adv="adv", pub="pub", price=9, issued=2.5, url="u",
                       user=None, ctx=ctx, kw=kw, cat=cat, cpa=cpa)
    signer = ClickSigner([OLD_KEY])
    assert signer.verify(signer.sign(claim)) == claim


def test_tokens_sealed_before_the_context_or_the_report_fields_still_open():
    """Claims sealed as 9 fields (before the click-through context) and as 10 (before keyword,
    category and CPA event) open, the keyword and category then taken from the context."""
    # sealed by hand as the module docstring lays a token out (HKDF-SHA256 → AES key and key id)
    okm = HKDF(algorithm=hashes.SHA256(), length=36, salt=None, info=b"admatch.click.v2").derive(OLD_KEY.encode())
    header, nonce = b"\xa2" + okm[32:], b"\x00" * 12
    head = ["e" * 32, "ad", "cmp", "adv", "pub", 11, 3.5, "u", None]
    for values, kw, cat in ((head, "", ""), ([*head, "596\x1f房贷\x1f0\x1f3"], "房贷", "596")):
        plain = json.dumps(values, ensure_ascii=False).encode()
        token = base64.urlsafe_b64encode(header + nonce + AESGCMSIV(okm[:32]).encrypt(nonce, plain, header))
        claim = ClickSigner([OLD_KEY]).verify(token.rstrip(b"=").decode())
        assert (claim.imp, claim.price, claim.kw, claim.cat, claim.cpa) == ("e" * 32, 11, kw, cat, "")


@pytest.mark.parametrize("where", ["key id", "tag"])
def test_an_altered_token_gets_400_and_nothing_is_recorded(fast_client, world, clean_redis, where):
    """A click token with its key id or authentication tag changed is a 400 and leaves no ledger entry."""
    w = world(fast_client)
    data = bytearray(raw(token_of(w.one_ad()["click_url"])))
    data[1 if where == "key id" else len(data) - 1] ^= 0x20
    r = w.click("/v1/click/" + base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode())
    assert_error(r, 400, code="invalid_click_token")
    assert list(clean_redis.scan_iter(match="am:*:ledger")) == []


def test_rotation_opens_tokens_of_every_configured_key_and_seals_with_the_newest():
    """Signers holding [old, new] open tokens sealed by [old]; their own open with [new] and not with [old]."""
    claim = ClickClaim(imp="c" * 32, ad="ad", cmp="cmp", adv="adv", pub="pub", price=7, issued=1.5, url="u")
    old, both = ClickSigner([OLD_KEY]), ClickSigner([OLD_KEY, NEW_KEY])
    assert both.verify(old.sign(claim)) == claim
    mine = both.sign(claim)
    assert ClickSigner([NEW_KEY]).verify(mine) == claim
    with pytest.raises(BadClickToken):
        old.verify(mine)
    with pytest.raises(BadClickToken):
        ClickSigner([NEW_KEY]).verify(old.sign(claim))  # the old key dropped: its tokens refused


def test_signed_only_tokens_issued_before_the_cut_over_still_charge(fast_client, world, clean_redis):
    """A readable, itsdangerous-signed token of the earlier format, within the click window, redirects and is charged."""
    w = world(fast_client)
    claim = ClickSigner([OLD_KEY]).verify(token_of(w.one_ad()["click_url"]))
    v1 = URLSafeSerializer([OLD_KEY], salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})
    old_token = v1.dumps(dataclasses.asdict(claim))
    r = w.click(f"/v1/click/{old_token}")
    assert (r.status_code, r.headers["location"]) == (302, f"{AD['landing_url']}?admatch_click={claim.imp}.{claim.cmp}")
    assert ledger_reasons(clean_redis, w.cmp_id) == ["valid"]
    forged = v1.dumps({**dataclasses.asdict(claim), "price": 1})[:-3] + "AAA"
    assert w.click(f"/v1/click/{forged}").status_code == 400


# ---- pseudonyms and user keys -----------------------------------------------------------------

@pytest.mark.parametrize("configured", [None, "pseudonym-secret-from-settings"])
def test_frequency_keys_are_an_hmac_of_the_user_key_under_the_secret(app, world, clean_redis, configured):
    """The frequency key holds HMAC-SHA256(secret, user key) — the configured secret, else one kept in
    Redis — never the user key or its plain hash."""
    with app(impression_flush_seconds=0, pseudonym_secret=configured) as client:
        world(client).one_ad(user_key=OPAQUE_USER)
    [freq] = [k for k in clean_redis.scan_iter(match="am:{u:*}:freq:*")]
    secret = configured or clean_redis.get(keys.PSEUDONYM_SECRET)
    assert secret and (configured is None) == clean_redis.exists(keys.PSEUDONYM_SECRET)
    expected = hmac.new(secret.encode(), OPAQUE_USER.encode(), hashlib.sha256).hexdigest()[:32]
    assert freq.startswith(f"am:{{u:{expected}}}:")
    assert hashlib.sha256(OPAQUE_USER.encode()).hexdigest()[:24] not in freq and OPAQUE_USER not in freq


@pytest.mark.parametrize("user_key,kind", [("13912345678", "phone"), ("+86 139 1234 5678", "phone"),
                                           ("11010519491231002X", "national ID"),
                                           ("reader@example.com", "e-mail")])
def test_personal_data_as_user_key_is_refused_with_422(fast_client, world, user_key, kind):
    """A phone number, ID number or e-mail address as user_key gets a 422 naming user_key and saying why."""
    w = world(fast_client)
    r = fast_client.post("/v1/match", json={"publisher_id": w.pub_id, "page": PAGE, "user_key": user_key},
                         headers=auth(w.pub_key))
    body = assert_error(r, 422, field="user_key")
    assert kind in body["detail"] and "opaque" in body["detail"] and user_key not in body["detail"]


@pytest.mark.parametrize("user_key", [hashlib.sha256(b"cookie").hexdigest()[:32],
                                      "123e4567-e89b-12d3-a456-426614174000", OPAQUE_USER])
def test_opaque_user_keys_are_accepted(fast_client, world, user_key):
    """A 32-hex hash, a UUID or a cookie id as user_key is served as usual."""
    w = world(fast_client)
    assert w.one_ad(user_key=user_key)["click_url"]


# ---- metrics, hosts, CSV ----------------------------------------------------------------------

def test_metrics_need_the_admin_or_metrics_key(app, world):
    """/metrics is 401 without a key or with a publisher's, 200 with the admin key or the metrics key."""
    with app(metrics_key=SecretStr("scraper-key")) as client:
        w = world(client)
        assert_error(client.get("/metrics"), 401)
        assert_error(client.get("/metrics", headers=auth(w.pub_key)), 401)
        for key in (ADMIN_KEY, "scraper-key"):
            r = client.get("/metrics", headers=auth(key))
            assert r.status_code == 200 and "admatch_" in r.text


def test_metrics_are_public_when_configured(app):
    """With ADMATCH_METRICS_PUBLIC=true, /metrics answers without a key."""
    with app(metrics_public=True) as client:
        assert client.get("/metrics").status_code == 200


def test_allowed_hosts_refuse_other_host_headers_and_click_urls_use_an_allowed_one(app, world):
    """With ADMATCH_ALLOWED_HOSTS, a request for another Host is refused, so no client picks the click URLs' host."""
    with app(allowed_hosts=["ads.example.cn"]) as client:
        w = world(client)
        r = client.post("/v1/match", json={"publisher_id": w.pub_id, "page": PAGE},
                        headers={**auth(w.pub_key), "Host": "evil.example"})
        assert r.status_code == 400
        client.base_url = "http://ads.example.cn"  # type: ignore[assignment]
        assert w.one_ad()["click_url"].startswith("http://ads.example.cn/v1/click/")


def test_a_missing_public_base_url_is_warned_about_at_start(redis_url, index_dir, tmp_path, clean_redis, caplog):
    """An app without ADMATCH_PUBLIC_BASE_URL logs a warning naming it; one with it does not."""
    with caplog.at_level(logging.WARNING, logger="service.app"):
        create_app(base_settings(redis_url, tmp_path, index_dir))
        assert "ADMATCH_PUBLIC_BASE_URL is unset" in caplog.text
        caplog.clear()
        create_app(base_settings(redis_url, tmp_path, index_dir, public_base_url="https://ads.example.cn"))
        assert "ADMATCH_PUBLIC_BASE_URL" not in caplog.text


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\")", "+1+2", "-3+4", "@SUM(A1)", "\tx", "\rx"])
def test_csv_cells_that_would_start_a_formula_are_escaped(cell):
    """A text cell starting with = + - @ tab or CR is written with a leading apostrophe; numbers stay numbers."""
    assert reports.csv_cell(cell) == "'" + cell
    assert reports.csv_cell(-5) == -5 and reports.csv_cell("2026-12-01") == "2026-12-01"
    text = reports.to_csv([reports.Row(cell, impressions=1)], reports.Row("total", impressions=1))
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert [r[0] for r in rows[1:]] == ["'" + cell, "total"]
