"""The views that need more than the site-wide Content Security Policy, and exactly what.

The policy itself is ``settings.CONTENT_SECURITY_POLICY``.  Each exception here is a
django-csp decorator for one view, so it widens that view's header and nothing else (a
later page, e.g. a sandboxed report, can replace its policy whole with ``csp_replace``).
"""

from __future__ import annotations

from csp.decorators import csp_update
from drf_spectacular.views import SpectacularSwaggerSplitView

# The SHA-256 of the empty string, as a style-src source: it admits a <style> element
# that is empty when it is inserted, and nothing else.  plotly.js creates exactly that and
# then adds its rules through the CSSOM (insertRule), which CSP does not restrict; without
# it the element has no sheet and plotly.js fails to load.
EMPTY_STYLE_ELEMENT = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"

#: Pages with plotly.js charts; ``data:`` images for the chart's "download as PNG".
plotly_charts = csp_update({"style-src": [EMPTY_STYLE_ELEMENT], "img-src": ["data:"]})

#: The Swagger UI draws its icons from ``data:`` SVG images in its stylesheet.
api_docs = csp_update({"img-src": ["data:"]})


class ApiDocsView(SpectacularSwaggerSplitView):
    """Swagger UI with its start-up script served as a file (the split view) and its page
    styles in a static stylesheet, so it needs no inline script or style."""

    template_name = "api/swagger_ui.html"
