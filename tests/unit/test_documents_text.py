"""The pure parts of issuance: masked recipients, NewDocument validation, QR codes that scan back."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
import zxingcpp
from PIL import Image

from controlplane.documents.issuance import NewDocument
from controlplane.documents.masking import mask_recipient
from controlplane.documents.qr import make_qr, qr_png, qr_svg
from controlplane.errors import InvalidInput

DIGEST = "ab" * 32


class TestMaskRecipient:
    @pytest.mark.parametrize(("name", "masked"), [
        ("Ahmed Karim Salih", "A**** K**** S****"),
        ("  ahmed   karim ", "a**** k****"),
        ("Jo", "J****"),  # the length of a name is not revealed
        ("أحمد كريم صالح", "أ**** ك**** ص****"),
        ("مُحَمَّد علي", "مُ**** ع****"),  # a letter keeps its harakat
        ("هەژار کەریم", "ه**** ک****"),  # noqa: RUF001 - Kurdish (Sorani)
        ("", ""),
    ])
    def test_masks_every_word_latin_and_arabic_script(self, name: str, masked: str) -> None:
        assert mask_recipient(name) == masked

    def test_never_contains_more_than_the_initials(self) -> None:
        full = "Ahmed Karim Salih"
        assert not any(part[1:] in mask_recipient(full) for part in full.split())


class TestNewDocument:
    def test_parses_and_normalises(self) -> None:
        doc = NewDocument.parse({
            "doc_type": "birth-certificate", "title": "  Birth   certificate ", "recipient": "أحمد كريم",
            "sha256": DIGEST.upper(), "expires_at": "2030-01-01",
        })
        assert doc.title == "Birth certificate"
        assert doc.sha256 == DIGEST
        assert doc.expires_at == datetime(2030, 1, 1, tzinfo=UTC)
        assert doc.import_ref is None

    def test_names_every_bad_field(self) -> None:
        with pytest.raises(InvalidInput) as caught:
            NewDocument.parse({"doc_type": "Birth Certificate", "title": "", "recipient": "x\u202ey",
                               "sha256": "abc", "expires_at": "next year", "colour": "red"})
        message = caught.value.message
        for field in ("doc_type", "title", "recipient", "sha256", "expires_at", "colour"):
            assert f"{field}:" in message, field

    @pytest.mark.parametrize("body", [None, [], "text", 5])
    def test_refuses_a_non_object(self, body: object) -> None:
        with pytest.raises(InvalidInput, match="must be an object"):
            NewDocument.parse(body)  # type: ignore[arg-type]

    def test_title_limit_is_300_characters(self) -> None:
        base = {"doc_type": "t", "recipient": "r", "sha256": DIGEST}
        assert NewDocument.parse({**base, "title": "x" * 300}).title == "x" * 300
        with pytest.raises(InvalidInput, match="title: at most 300"):
            NewDocument.parse({**base, "title": "x" * 301})


class TestQr:
    URL = "HTTP://127.0.0.1:8080/V/" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" * 10

    def test_uppercase_url_is_alphanumeric_mode_level_m(self) -> None:
        qr = make_qr(self.URL)
        assert (qr.mode, qr.error) == ("alphanumeric", "M")
        assert make_qr(self.URL.lower()).mode == "byte"
        assert make_qr(self.URL).version < make_qr(self.URL.lower()).version  # smaller symbol

    def test_png_scans_back_with_zxing(self) -> None:
        png = qr_png(self.URL)
        assert png.startswith(b"\x89PNG")
        [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
        assert found.text == self.URL

    def test_svg_is_a_standalone_document(self) -> None:
        svg = qr_svg(self.URL)
        assert svg.startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in svg
        assert svg.rstrip().endswith("</svg>")
