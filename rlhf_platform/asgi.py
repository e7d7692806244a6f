"""ASGI entry point (uvicorn/daphne rlhf_platform.asgi)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlhf_platform.settings")
application = get_asgi_application()
