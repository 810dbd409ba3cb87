# Production image: `docker build -t mailmark .` then
#   docker run -d -p 25:25 -p 587:587 -p 465:465 -p 143:143 -p 993:993 -p 443:443 -p 80:80 \
#     -e MAILMARK_HOSTNAME=mx.example.com -v mailmark-data:/var/lib/mailmark mailmark
# The web app is on HTTPS (443); port 80 answers ACME challenges and redirects to it. Behind a
# reverse proxy instead: -e MAILMARK_HTTPS_PORT= -e MAILMARK_HTTP_REDIRECT_PORT= -p 8025:8025.
# or `docker compose up -d` with compose.yaml (Mailmark, PostgreSQL, and SeaweedFS for the blobs).
# The web app is built in a Node stage; the image itself needs no Node.
FROM node:20-slim AS ui
WORKDIR /build/web/ui
COPY web/ui/package.json web/ui/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ui ./
# vite.config.ts writes the build to ../../src/mailmark/web/static/ui.
RUN npm run build

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MAILMARK_DATA_DIR=/var/lib/mailmark \
    MAILMARK_BIND=0.0.0.0 \
    MAILMARK_MX_PORT=25 \
    MAILMARK_SUBMISSION_PORT=587 \
    MAILMARK_SUBMISSIONS_PORT=465 \
    MAILMARK_IMAP_PORT=143 \
    MAILMARK_IMAPS_PORT=993 \
    MAILMARK_MANAGESIEVE_PORT=4190 \
    MAILMARK_HTTP_PORT=8025 \
    MAILMARK_HTTPS_PORT=443 \
    MAILMARK_HTTP_REDIRECT_PORT=80

WORKDIR /opt/mailmark
COPY pyproject.toml README.md ./
COPY src ./src
COPY --from=ui /build/src/mailmark/web/static/ui ./src/mailmark/web/static/ui
RUN pip install --no-cache-dir ".[fast]" \
    && useradd --system --user-group --home-dir /var/lib/mailmark \
       --shell /usr/sbin/nologin mailmark \
    && install -d -m 700 -o mailmark -g mailmark /var/lib/mailmark

# Docker lets unprivileged processes in a container bind ports below 1024
# (net.ipv4.ip_unprivileged_port_start=0), so the server never runs as root here.
USER mailmark
VOLUME /var/lib/mailmark
EXPOSE 25 587 465 143 993 4190 443 80
# Liveness: /healthz on the HTTP port answers 2xx while the server runs (urllib raises, and the
# check fails, on anything else or after 5 s). The image has no curl; Python is there. With
# HTTPS on, the HTTP port listens on 127.0.0.1 only, which is where the check runs.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['MAILMARK_HTTP_PORT'], timeout=5)"]
STOPSIGNAL SIGTERM
CMD ["mailmark", "serve"]
