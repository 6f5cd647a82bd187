"""QR codes of verification URLs (segno, error correction M), as SVG text or PNG bytes."""

from __future__ import annotations

import io

import segno

ERROR_LEVEL = "m"  # ~15 % of the symbol can be damaged: a crumpled letter still scans


def make_qr(url: str) -> segno.QRCode:
    """The QR of `url`; an all-uppercase URL is encoded in alphanumeric mode (smaller symbol)."""
    return segno.make_qr(url, error=ERROR_LEVEL, boost_error=False)


def qr_svg(url: str) -> str:
    """A standalone SVG document (no XML declaration), scalable, dark modules in black."""
    buffer = io.BytesIO()
    make_qr(url).save(buffer, kind="svg", xmldecl=False, svgns=True, scale=4, border=4)
    return buffer.getvalue().decode("utf-8")


def qr_png(url: str, *, scale: int = 4) -> bytes:
    """PNG bytes; `scale` pixels per module, the standard 4-module quiet zone."""
    buffer = io.BytesIO()
    make_qr(url).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()
