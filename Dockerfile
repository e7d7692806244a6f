# Attune image: one image for web, worker and beat (see compose.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ATTUNE_VAR_DIR=/var/lib/attune
WORKDIR /app

# Pango: WeasyPrint renders model cards as PDF.
RUN apt-get update && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
RUN useradd --system --home /app attune && mkdir -p /var/lib/attune/audit && chown -R attune /var/lib/attune \
 && SECRET_KEY=build-only AUDIT_HMAC_KEYS=build:YnVpbGQtb25seS1ub3QtYS1zZWNyZXQtMDAwMDAwMDA= \
    FIELD_ENCRYPTION_KEYS=YnVpbGQtb25seS1ub3QtYS1zZWNyZXQtMDAwMDAwMDA= \
    python manage.py collectstatic --noinput
USER attune

EXPOSE 8000
# Long timeout: a million-row import is streamed inside one request (about a minute).
CMD ["gunicorn", "rlhf_platform.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4", "--timeout", "600", "--access-logfile", "-"]
