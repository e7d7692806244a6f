"""Model card PDFs, laid out by WeasyPrint on this machine.

Rendering never reaches the network: the URL fetcher admits ``file:`` URLs inside the
app's static directory and ``data:`` URLs, and refuses everything else (http, https, ftp,
files elsewhere), whatever the HTML asks for.  The stylesheet is read from its file.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.conf import settings
from weasyprint import CSS, HTML, Document
from weasyprint.urls import URLFetcher, URLFetcherResponse

#: Where the PDF renderer may read files: the app's own static files, nothing else.
CARD_STATIC_DIR = (Path(settings.BASE_DIR) / "static").resolve()
CARD_PRINT_CSS = CARD_STATIC_DIR / "css" / "model-card-print.css"


class CardFetchRefused(ValueError):
    """The PDF renderer was asked for a resource that is not a local static file."""


class CardURLFetcher(URLFetcher):
    """WeasyPrint's fetcher, restricted to the app's static files and ``data:`` URLs."""

    def __init__(self, **kwargs):
        super().__init__(allowed_protocols=("file", "data"), allow_redirects=False, **kwargs)

    def fetch(self, url: str, headers=None) -> URLFetcherResponse:
        parsed = urlparse(url)
        if parsed.scheme == "data":
            return super().fetch(url, headers)
        if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
            path = Path(unquote(parsed.path)).resolve()
            if path.is_relative_to(CARD_STATIC_DIR) and path.is_file():
                content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return URLFetcherResponse(
                    path.as_uri(), body=path.read_bytes(), headers={"Content-Type": content_type}
                )
        raise CardFetchRefused(f"model cards load no external resources: {url[:200]}")


def card_pdf_document(*, html_text: str) -> Document:
    """Lay out card HTML (static files only; the print stylesheet from its file)."""
    fetcher = CardURLFetcher()
    stylesheet = CSS(filename=str(CARD_PRINT_CSS), url_fetcher=fetcher)
    return HTML(
        string=html_text, base_url=CARD_STATIC_DIR.as_uri() + "/", url_fetcher=fetcher
    ).render(stylesheets=[stylesheet])
