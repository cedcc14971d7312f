# One image for every service of deploy/compose.yaml: the web processes, the Celery worker, the one-shot
# migration, and the PostgreSQL, Redis and nginx it is wired to (Debian's packages: nothing outside the
# Debian and PyPI registries). deploy/entrypoint.sh picks the service: web, worker, migrate, db, redis, proxy.
FROM debian:bookworm-slim

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
       postgresql-15 redis-server nginx-light tini \
    && rm -rf /var/lib/apt/lists/* \
    && python3.11 -m venv $VIRTUAL_ENV \
    && useradd --create-home --uid 10001 tutor

WORKDIR /app
COPY requirements.txt .
# torch's CPU wheel (PyPI's default Linux wheel carries CUDA, several GB); a GPU worker's image swaps the index.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir --extra-index-url $TORCH_INDEX -r requirements.txt

COPY . .
RUN DJANGO_SECRET_KEY=build-only DJANGO_DEBUG=false python manage.py collectstatic --no-input -v0 \
    && mkdir -p /artifacts && chown tutor /artifacts

EXPOSE 8000
ENTRYPOINT ["tini", "--", "/app/deploy/entrypoint.sh"]
CMD ["web"]
