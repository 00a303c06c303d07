"""The report as HTML and PDF at home: the box's template (core/report/assets), white-labelled.

PDF through WeasyPrint (pinned in pyproject's ``home`` extra; it needs Pango and a font from
Debian: libpango-1.0-0, libpangoft2-1.0-0, fonts-dejavu-core). The stylesheet's print rules
(A4, one section a page) lay it out; SVG charts are inline, so nothing is fetched.
"""

from __future__ import annotations

import base64
import functools
import re
from dataclasses import dataclass, replace
from pathlib import Path

import jinja2

from core.report import ASSETS, STYLESHEET, TEMPLATE
from core.report.inputs import ReportInput
from core.report.model import Report
from core.report.page import context

_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_LOGO_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}
MAX_LOGO_BYTES = 256 * 1024


class BrandingError(ValueError):
    """A white-label setting that cannot be used; the message names the fix."""


@dataclass(frozen=True)
class Branding:
    """The MSP's name, logo and colour on every report (white label, configured at home)."""

    msp_name: str = ""
    accent: str = ""  # "#1d4ed8"
    logo_src: str = ""  # a data: URI (the PDF and the email carry it inside)

    @classmethod
    def load(cls, msp_name: str = "", accent: str = "", logo_file: str = "") -> Branding:
        if accent and not _COLOUR.match(accent):
            raise BrandingError(f"report.accent: {accent!r} is not a colour; write e.g. '#1d4ed8'")
        logo = ""
        if logo_file:
            path = Path(logo_file)
            kind = _LOGO_TYPES.get(path.suffix.lower())
            if kind is None:
                raise BrandingError(f"report.logo_file: {path.name}: use a .png, .jpg or .svg")
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise BrandingError(
                    f"report.logo_file: cannot read {path}: {exc.strerror}"
                ) from None
            if len(raw) > MAX_LOGO_BYTES:
                raise BrandingError(f"report.logo_file: {path.name} is over 256 KiB; shrink it")
            logo = f"data:{kind};base64,{base64.b64encode(raw).decode()}"
        return cls(msp_name, accent, logo)


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(ASSETS),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def html(
    data: ReportInput, report: Report, branding: Branding = Branding(), css_href: str = ""
) -> str:
    """The report page; ``css_href`` empty: the stylesheet is WeasyPrint's (see :func:`pdf`)."""
    if branding.msp_name and not report.msp_name:
        report = replace(report, msp_name=branding.msp_name)
    page = context(
        data,
        report,
        css_href=css_href or STYLESHEET.as_uri(),
        accent=branding.accent,
        logo_src=branding.logo_src,
    )
    return environment().get_template(TEMPLATE).render(page)


def pdf(page_html: str) -> bytes:
    """The HTML as an A4 PDF (CPU-bound, seconds: call it off the event loop)."""
    import weasyprint  # a heavy import, paid only where PDFs are made

    doc = weasyprint.HTML(string=page_html, base_url=str(ASSETS))
    return bytes(doc.write_pdf())


def pdf_pages_before_appendix(page_html: str) -> tuple[int, int]:
    """(pages before the technical appendix, all pages) of the rendered PDF."""
    import weasyprint

    doc = weasyprint.HTML(string=page_html, base_url=str(ASSETS)).render()
    for number, page in enumerate(doc.pages):
        if _has_anchor(page, "appendix"):
            return number, len(doc.pages)
    return len(doc.pages), len(doc.pages)


def _has_anchor(page: object, anchor: str) -> bool:
    anchors = getattr(page, "anchors", {}) or {}
    return anchor in anchors
