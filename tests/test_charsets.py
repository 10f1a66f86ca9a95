"""The one text decoder, on the Japanese and European cases real mail produces."""

import base64
import random

import pytest

from m2r_deliver.charsets import decode, decode_header
from support.mails import sjis_to_jis

CP932_TEXT = "見積書①㈱髙～テスト"


@pytest.mark.parametrize("label", ["Shift_JIS", "shift-jis", "x-sjis", "windows-31j", "cp932"])
def test_shift_jis_family_reads_cp932_extensions(label):
    assert decode(CP932_TEXT.encode("cp932"), label) == CP932_TEXT


def test_iso_2022_jp_with_cp932_extensions_is_exact():
    text = "見積書①㈱髙"
    assert decode(sjis_to_jis(text.encode("cp932")), "ISO-2022-JP") == text


def test_plain_iso_2022_jp():
    assert decode("日本語のメール".encode("iso2022_jp"), "iso-2022-jp") == "日本語のメール"


def test_euc_jp_labelled_and_unlabelled():
    data = "日本語のテキストです".encode("euc_jp")
    assert decode(data, "EUC-JP") == "日本語のテキストです"
    assert decode(data, "x-euc-jp") == "日本語のテキストです"


def test_latin1_label_reads_windows_1252():
    assert decode("price: 5 € – café".encode("cp1252"), "iso-8859-1") == "price: 5 € – café"


def test_unknown_label_falls_back_to_content():
    assert decode("naïve".encode("utf-8"), "x-unknown") == "naïve"
    assert decode("日本語のテキスト".encode("cp932"), "unknown-8bit") == "日本語のテキスト"


def test_utf8_with_a_stray_latin1_byte_keeps_both():
    assert decode("grüße ".encode() + b"caf\xe9", "utf-8") == "grüße café"


def test_rfc2047_word_split_inside_a_character():
    raw = "テスト件名".encode("utf-8")
    words = [f"=?UTF-8?B?{base64.b64encode(part).decode()}?=" for part in (raw[:4], raw[4:])]
    assert decode_header(f"{words[0]}\r\n {words[1]}") == "テスト件名"


def test_raw_8bit_header_is_recovered():
    raw = "件名です".encode("utf-8").decode("ascii", "surrogateescape")
    assert decode_header(raw) == "件名です"


def test_iso_2022_jp_encoded_word_with_cp932_extension():
    word = base64.b64encode(sjis_to_jis("①番".encode("cp932"))).decode()
    assert decode_header(f"=?ISO-2022-JP?B?{word}?=") == "①番"


def test_never_raises_on_garbage():
    rng = random.Random(1234)
    labels = [None, "utf-8", "iso-2022-jp", "shift_jis", "euc-jp", "x-unknown", "bogus-charset", "us-ascii"]
    for _ in range(500):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        for label in labels:
            assert isinstance(decode(data, label), str)
        assert isinstance(decode_header(data.decode("ascii", "surrogateescape")), str)
