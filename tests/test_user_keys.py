"""The personal-data rule for user keys (matching/user_keys.py): phone numbers, national ID numbers
and e-mail addresses are recognised; opaque ids — hex digests, UUIDs, cookie ids — are not."""

from __future__ import annotations

import hashlib
import uuid
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matching.user_keys import id_check_digit, personal_data_kind

PHONE, ID, EMAIL = "a mobile phone number", "a national ID number", "an e-mail address"


@pytest.mark.parametrize("value", ["13912345678", "19912345678", "+8613912345678", "+86 139 1234 5678",
                                   "0086-139-1234-5678", "8613912345678", " 15012345678 ", "(+86)13912345678"])
def test_chinese_mobile_numbers_are_recognised(value):
    """A mainland mobile number, with or without +86 and separators, is a phone number."""
    assert personal_data_kind(value) == PHONE


@pytest.mark.parametrize("value", ["12345678901", "1391234567", "139123456789", "+1 415 555 0100", "10086"])
def test_other_digit_strings_are_not_mobile_numbers(value):
    """Eleven digits starting 10-12, ten or twelve digits, foreign numbers: not a mainland mobile number."""
    assert personal_data_kind(value) is None


def test_the_published_sample_id_number_is_recognised_in_either_case():
    """GB 11643's sample 11010519491231002X (X check digit) is an ID number, with x as well."""
    assert id_check_digit("11010519491231002") == "X"
    assert personal_data_kind("11010519491231002X") == ID
    assert personal_data_kind("11010519491231002x") == ID


@given(province=st.sampled_from([11, 31, 44, 51, 65, 81]), county=st.integers(0, 9999),
       born=st.dates(date(1900, 1, 1), date(2025, 12, 31)), seq=st.integers(0, 999))
def test_id_numbers_are_recognised_with_their_check_digit_only(province, county, born, seq):
    """An ID number with a real birth date is recognised with its own check digit and with no other."""
    first17 = f"{province:02d}{county:04d}{born:%Y%m%d}{seq:03d}"
    # the check digit written out independently: weights 2^(17-i) mod 11, check (12 - sum) mod 11
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(first17))
    check = (12 - total % 11) % 11
    expected = "X" if check == 10 else str(check)
    assert id_check_digit(first17) == expected
    for c in "0123456789X":
        assert personal_data_kind(first17 + c) == (ID if c == expected else None)


@pytest.mark.parametrize("value", ["110105194902300021", "990105194912310021", "123456789012345678",
                                   "110105194912310021"])
def test_18_digit_numbers_without_a_birth_date_province_or_check_digit_are_not_id_numbers(value):
    """30 February, province 99, an impossible date, a wrong check digit: not an ID number."""
    assert personal_data_kind(value) is None


@pytest.mark.parametrize("value", ["reader@example.com", "zhang.san+ads@mail.qq.com", "li@163.com"])
def test_email_addresses_are_recognised(value):
    """local@domain.tld is an e-mail address."""
    assert personal_data_kind(value) == EMAIL


@given(st.binary(min_size=1, max_size=64))
def test_hex_digests_are_opaque(data):
    """A sha256, md5 or 32-hex digest of anything is an opaque id."""
    for digest in (hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest(),
                   hashlib.sha256(data).hexdigest()[:32]):
        assert personal_data_kind(digest) is None


@given(st.uuids())
def test_uuids_are_opaque(u: uuid.UUID):
    """A UUID, with or without hyphens, is an opaque id."""
    assert personal_data_kind(str(u)) is None
    assert personal_data_kind(u.hex) is None


@pytest.mark.parametrize("value", ["reader-1", "ck_8fK2mQ9x", "user@", "@handle", "a@b", "2024-01-01",
                                   str(date(2000, 1, 1) + timedelta(days=3))])
def test_cookie_like_ids_are_opaque(value):
    """Short ids, handles and dates are not personal data by this rule."""
    assert personal_data_kind(value) is None
