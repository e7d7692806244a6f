"""The views that need more than the site-wide Content Security Policy, and exactly what.

The policy itself is ``settings.CONTENT_SECURITY_POLICY``.  Each exception here is a
django-csp decorator for one view, so it widens that view's header and nothing else (the
stored report below replaces its policy whole, with ``csp``).
"""

from __future__ import annotations

from csp.constants import NONE, SELF, UNSAFE_INLINE
from csp.decorators import csp, csp_update
from django.views.decorators.clickjacking import xframe_options_sameorigin
from drf_spectacular.views import SpectacularSwaggerSplitView

# The SHA-256 of the empty string, as a style-src source: it admits a <style> element
# that is empty when it is inserted, and nothing else.  plotly.js creates exactly that and
# then adds its rules through the CSSOM (insertRule), which CSP does not restrict; without
# it the element has no sheet and plotly.js fails to load.
EMPTY_STYLE_ELEMENT = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"

#: Pages with plotly.js charts; ``data:`` images for the chart's "download as PNG".
plotly_charts = csp_update({"style-src": [EMPTY_STYLE_ELEMENT], "img-src": ["data:"]})

#: Stored reports made by other tools (Evidently's drift report): a self-contained page
#: of inline scripts and styles, shown only inside a ``<iframe sandbox="allow-scripts">``
#: of the app's own page.  Its policy replaces the app's whole: inline code runs there
#: and only there, it loads and sends nothing (``default-src``/``connect-src 'none'``,
#: no forms, no base), and only the app's own pages may frame it.  The sandbox (no
#: ``allow-same-origin``) gives the frame an opaque origin, so its scripts cannot read
#: the app's cookies or DOM either.
REPORT_POLICY = {
    "default-src": [NONE],
    "script-src": [UNSAFE_INLINE],
    "style-src": [UNSAFE_INLINE],
    "img-src": ["data:"],
    "font-src": ["data:"],
    "connect-src": [NONE],
    "form-action": [NONE],
    "base-uri": [NONE],
    "frame-ancestors": [SELF],
}


def sandboxed_report(view):
    """The stored-report view with ``REPORT_POLICY`` and ``X-Frame-Options: SAMEORIGIN``."""
    return xframe_options_sameorigin(csp(REPORT_POLICY)(view))


#: The Swagger UI draws its icons from ``data:`` SVG images in its stylesheet.
api_docs = csp_update({"img-src": ["data:"]})


class ApiDocsView(SpectacularSwaggerSplitView):
    """Swagger UI with its start-up script served as a file (the split view) and its page
    styles in a static stylesheet, so it needs no inline script or style."""

    template_name = "api/swagger_ui.html"
