"""Email and phone normalisation and hashing (connector/outputs/line_conversion/hashing.py),
checked against LINE's documented hash vectors, directly, through the encoder and through the CLI.
"""
from __future__ import annotations

import hashlib
import json

import orjson
import pytest

from helpers import blob, line_columns, now_s, result_config, run_cli, write_csv
from connector.outputs.line_conversion.fields import BY_COLUMN, FieldError
from connector.outputs.line_conversion.hashing import (
    hash_email,
    make_phone_hasher,
    make_phone_normaliser,
    normalise_email,
    sha256_hex,
)
from connector.outputs.line_conversion.encoders import LineEventEncoder

EMAIL_RAW = " Taro.Yamada@Example.com "
EMAIL_HASH = "b6ebd83922edfa96b0ff9166a958badcc230dd68d2315ddfea22f20eaf05994a"
PHONE_E164 = "+818012345678"
PHONE_HASH = "8b664e742106a6db1edb1a51c79ced6d56b2541557fdfab1c41e98204c1b3713"
NOW = 1_735_689_600


def test_vectors_are_plain_sha256():
    assert hashlib.sha256(b"taro.yamada@example.com").hexdigest() == EMAIL_HASH
    assert hashlib.sha256(PHONE_E164.encode()).hexdigest() == PHONE_HASH
    assert sha256_hex("taro.yamada@example.com") == EMAIL_HASH


# --------------------------------------------------------------------------- email


def test_email_vector():
    assert normalise_email(EMAIL_RAW) == "taro.yamada@example.com"
    assert hash_email(EMAIL_RAW) == EMAIL_HASH


@pytest.mark.parametrize("raw", ["taro.yamada@example.com", "TARO.YAMADA@EXAMPLE.COM",
                                 "\tTaro.Yamada@Example.com\n", "  taro.yamada@example.com"])
def test_email_variants_hash_the_same(raw):
    assert hash_email(raw) == EMAIL_HASH


@pytest.mark.parametrize("raw", ["a+tag@example.com", "o'neil@example.co.jp", "a_b!#$%&'*+/=?`{|}~^.-@x.y"])
def test_email_treasure_data_charset_accepted(raw):
    """Addresses with the characters Treasure Data's email rule allows (+, ' and the other
    symbols of its local-part set) are accepted and hashed after trimming and lower-casing."""
    out = hash_email(raw)
    assert out == sha256_hex(raw.strip().lower())
    BY_COLUMN["email"].check(out)


@pytest.mark.parametrize("raw", ["not-an-email", "taro@", "@example.com", "", "   ",
                                 "taro yamada@example.com", "taro@exa mple.com", "taro@@example.com",
                                 "tarö@example.com", "taro@例え.jp"])
def test_invalid_email_rejected(raw):
    with pytest.raises(FieldError) as ei:
        hash_email(raw)
    assert (ei.value.column, ei.value.rule) == ("email", "format")
    if raw.strip():
        assert raw.strip() not in ei.value.reason


@pytest.mark.parametrize("raw", [123, None, b"taro@example.com", ["a@b"]])
def test_email_non_string_rejected(raw):
    with pytest.raises(FieldError) as ei:
        hash_email(raw)
    assert (ei.value.column, ei.value.rule) == ("email", "type")


@pytest.mark.parametrize("pre", [EMAIL_HASH, EMAIL_HASH.upper(), f"  {EMAIL_HASH.upper()} ",
                                 EMAIL_HASH[:10].upper() + EMAIL_HASH[10:]])
def test_email_prehashed_is_lowercased_not_rehashed(pre):
    out = hash_email(pre)
    assert out == EMAIL_HASH
    assert out != sha256_hex(EMAIL_HASH)


def test_email_63_or_65_hex_is_not_prehashed():
    with pytest.raises(FieldError):
        hash_email(EMAIL_HASH[:-1])
    with pytest.raises(FieldError):
        hash_email(EMAIL_HASH + "0")


# --------------------------------------------------------------------------- phone


@pytest.mark.parametrize("region", [None, "JP", "US"])
@pytest.mark.parametrize("raw", [PHONE_E164, " +818012345678 ", "+81 80-1234-5678",
                                 "+81 (80) 1234 5678", "+81-80-1234-5678"])
def test_phone_e164_vector(raw, region):
    assert make_phone_normaliser(region)(raw) == PHONE_E164
    assert make_phone_hasher(region)(raw) == PHONE_HASH


@pytest.mark.parametrize("raw", ["080-1234-5678", "08012345678", "(080) 1234-5678"])
def test_national_phone_needs_region(raw):
    with pytest.raises(FieldError) as ei:
        make_phone_hasher(None)(raw)
    assert (ei.value.column, ei.value.rule) == ("phone", "country_code")
    assert "default_phone_region" in ei.value.reason
    assert make_phone_hasher("JP")(raw) == PHONE_HASH


def test_us_national_number_with_region():
    assert make_phone_normaliser("US")("(212) 555-0100") == "+12125550100"


@pytest.mark.parametrize("region", [None, "JP"])
@pytest.mark.parametrize("raw", ["+abc", "+", "+1", "+999 123456", "+81"])
def test_garbage_phone_rejected(raw, region):
    with pytest.raises(FieldError) as ei:
        make_phone_hasher(region)(raw)
    assert (ei.value.column, ei.value.rule) == ("phone", "format")


@pytest.mark.parametrize("raw", ["hello", "12", "x"])
def test_garbage_national_phone_rejected(raw):
    with pytest.raises(FieldError) as ei:
        make_phone_hasher("JP")(raw)
    assert ei.value.rule == "format"
    with pytest.raises(FieldError) as ei:
        make_phone_hasher(None)(raw)
    assert ei.value.rule == "country_code"


@pytest.mark.parametrize("raw", [
    "+818012345678abc",       # keypad letters: phonenumbers maps abc -> 222 silently
    "+81 80-TARO-5678",
    "+8180123456789012345",   # 19 digits; E.164 numbers have at most 15
])
def test_phone_that_is_not_a_number_is_rejected(raw):
    """A value that is not an E.164 number must be rejected, not hashed as some other number
    (that would silently attribute the conversion to a wrong or non-existent user)."""
    with pytest.raises(FieldError) as ei:
        make_phone_hasher(None)(raw)
    assert ei.value.column == "phone"


@pytest.mark.parametrize("raw", [818012345678, None, 8.18e11])
def test_phone_non_string_rejected(raw):
    with pytest.raises(FieldError) as ei:
        make_phone_hasher("JP")(raw)
    assert (ei.value.column, ei.value.rule) == ("phone", "type")


@pytest.mark.parametrize("pre", [PHONE_HASH, PHONE_HASH.upper(), f" {PHONE_HASH.upper()}\t"])
@pytest.mark.parametrize("region", [None, "JP"])
def test_phone_prehashed_is_lowercased_not_rehashed(pre, region):
    out = make_phone_hasher(region)(pre)
    assert out == PHONE_HASH
    assert out != sha256_hex(PHONE_HASH)


def test_phone_reasons_never_contain_value():
    raw = "+99912345PII"
    with pytest.raises(FieldError) as ei:
        make_phone_hasher(None)(raw)
    assert raw not in str(ei.value)
    assert "12345" not in str(ei.value)


# --------------------------------------------------------------------------- encoder path


def _encode(email=None, phone=None, region=None) -> dict:
    cols = ["deduplication_key", "event_type", "source_type", "event_timestamp", "email", "phone"]
    enc = LineEventEncoder(line_columns(cols), channel_id_present=False, test_flag=False,
                           default_phone_region=region, clock=lambda: NOW)
    return orjson.loads(enc.encode(("k1", "conversion", "web", NOW, email, phone)))


def test_encoder_hashes_raw_values():
    user = _encode(EMAIL_RAW, PHONE_E164)["user"]
    assert user == {"email": EMAIL_HASH, "phone": PHONE_HASH}


def test_encoder_national_phone_with_region():
    assert _encode(phone="080-1234-5678", region="JP")["user"] == {"phone": PHONE_HASH}


def test_encoder_national_phone_without_region_is_invalid():
    with pytest.raises(FieldError) as ei:
        _encode(phone="080-1234-5678")
    assert ei.value.rule == "country_code"


def test_encoder_never_double_hashes():
    user = _encode(EMAIL_HASH.upper(), PHONE_HASH.upper())["user"]
    assert user == {"email": EMAIL_HASH, "phone": PHONE_HASH}
    user = _encode(EMAIL_HASH, PHONE_HASH)["user"]
    assert user == {"email": EMAIL_HASH, "phone": PHONE_HASH}


def test_encoder_hash_is_idempotent():
    once = _encode(EMAIL_RAW, PHONE_E164)["user"]
    twice = _encode(once["email"], once["phone"])["user"]
    assert twice == once


# --------------------------------------------------------------------------- through the CLI


def test_formatting_variants_hash_like_the_vectors_through_the_cli(sandbox, tmp_path):
    """Formatting variants of LINE's documented email and phone vectors hash to the same
    digests through the whole CLI; a pre-hashed upper-case digest is lower-cased, never hashed
    again; neither the dry-run file nor the report holds a raw value."""
    email_h = "b6ebd83922edfa96b0ff9166a958badcc230dd68d2315ddfea22f20eaf05994a"
    phone_h = "8b664e742106a6db1edb1a51c79ced6d56b2541557fdfab1c41e98204c1b3713"
    ts = now_s() - 60
    rows = [("+818012345678", " Taro.Yamada@Example.com "),
            ("+81 80-1234-5678", "TARO.YAMADA@EXAMPLE.COM"),
            ("+81 (80) 1234 5678", email_h.upper()),
            ("080-1234-5678", "\ttaro.yamada@example.com\n"),
            (phone_h.upper(), email_h)]
    write_csv(tmp_path / "v.csv", [
        {"deduplication_key": f"v-{i}", "event_type": "conversion", "source_type": "web",
         "event_timestamp": ts, "phone": p, "email": e} for i, (p, e) in enumerate(rows)])
    out = tmp_path / "dry.jsonl"
    run = run_cli(tmp_path, "SELECT * FROM read_csv('v.csv', all_varchar=true)",
                  result_config(sandbox, default_phone_region="JP"), "--dry-run", str(out))
    assert run.returncode == 0, run.stderr
    events = [ev for line in out.read_text().splitlines() for ev in json.loads(line)]
    assert [(e["user"]["phone"], e["user"]["email"]) for e in events] == [(phone_h, email_h)] * 5
    text = out.read_text() + blob(run)
    for raw in ("Taro.Yamada", "taro.yamada@", "8012345678"):
        assert raw not in text
