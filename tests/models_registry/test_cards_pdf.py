"""Model card PDFs: rendered locally by WeasyPrint, naming the version and the revision,
and never reaching the network (the card's URL fetcher admits the app's static files only).
"""

from __future__ import annotations

import http.server
import threading

import pytest

from models_registry import card_pdf, cards, services
from tests.models_registry.test_cards import (  # noqa: F401 — fixtures
    CARD_TEXT,
    base,
    login,
    parent,
    snapshot,
)
from tests.models_registry.test_cards import version as version  # the fixture

pytestmark = pytest.mark.django_db


def pdf_text(document) -> str:
    """The text laid out on a WeasyPrint document's pages (its layout boxes)."""
    found: list[str] = []

    def walk(box):
        text = getattr(box, "text", None)
        if isinstance(text, str):
            found.append(text)
        for child in getattr(box, "children", ()) or ():
            walk(child)

    for page in document.pages:
        walk(page._page_box)
    return " ".join(found)


def test_the_pdf_download_names_the_version_and_revision(client, password, rosa, version):
    services.model_card_update(version=version, user=rosa, fields=CARD_TEXT)
    login(client, rosa, password)
    response = client.get(f"/models/versions/{version.pk}/card.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert 'filename="model-card-card-rm-2-r2.pdf"' in response["Content-Disposition"]
    assert response.content.startswith(b"%PDF-")
    document = cards.card_compose(version=version)
    assert response["X-Content-SHA256"] == document.content_sha256
    from django.template.loader import render_to_string

    laid_out = card_pdf.card_pdf_document(
        html_text=render_to_string("models_registry/card_print.html", cards.card_context(document))
    )
    text = pdf_text(laid_out)
    assert "card-rm@2" in text and "card revision 2" in text
    assert document.content_sha256 in text.replace(" ", "")  # the footer, however it wraps
    assert "0.8125" in text and CARD_TEXT["limitations"] in text
    assert f"{version.calibration['after']['ece']:.4g}" in text


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):
        type(self).requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()
        self.wfile.write(b"body { color: red }")

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    """A real HTTP server on 127.0.0.1 that records every request it gets."""
    _Recorder.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_rendering_fetches_nothing_from_the_network(local_server):
    html_text = (
        f'<html><head><link rel="stylesheet" href="{local_server}/style.css"></head>'
        f'<body><img src="{local_server}/pixel.png"><p>hello</p>'
        '<img src="img/favicon.svg"></body></html>'
    )
    document = card_pdf.card_pdf_document(html_text=html_text)
    assert document.write_pdf().startswith(b"%PDF-")
    assert _Recorder.requests == []  # neither the stylesheet nor the image was asked for
    # The server does answer, so an empty list means nobody asked.
    import urllib.request

    with urllib.request.urlopen(f"{local_server}/check") as reply:  # noqa: S310 — a local server
        assert reply.status == 200
    assert _Recorder.requests == ["/check"]


def test_the_url_fetcher_admits_static_files_only(local_server, tmp_path):
    fetcher = card_pdf.CardURLFetcher()
    response = fetcher.fetch(card_pdf.CARD_PRINT_CSS.as_uri())
    assert response.read().startswith(b"/*") and response.content_type == "text/css"
    response.close()
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    for url in (f"{local_server}/x.css", "https://example.org/a.png", outside.as_uri(),
                (card_pdf.CARD_STATIC_DIR / ".." / "manage.py").as_uri(), "ftp://127.0.0.1/x"):  # fmt: skip
        with pytest.raises(card_pdf.CardFetchRefused):
            fetcher.fetch(url)
    assert _Recorder.requests == []
