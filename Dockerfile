# The one image of web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# prometheus-client's multiprocess files (PROMETHEUS_MULTIPROC_DIR); a volume shared by
# web, worker and beat is mounted here and starts owned by the app user.
RUN useradd --system --uid 10001 --home-dir /app raffle \
    && mkdir -p /var/run/prometheus \
    && chown raffle /var/run/prometheus
USER raffle

EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--config", "config/gunicorn.conf.py", "--bind", "0.0.0.0:8000"]
