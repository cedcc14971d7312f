#!/usr/bin/env bash
# The services of deploy/compose.yaml, one image: entrypoint.sh web|worker|beat|migrate|db|redis|proxy
set -euo pipefail
cd /app
service="${1:-web}"
shift || true

as_tutor() { exec setpriv --reuid=tutor --regid=tutor --init-groups "$@"; }

case "$service" in
  web)
    # gunicorn.conf.py trusts X-Forwarded-Proto only with DJANGO_BEHIND_TLS_PROXY (README, Security).
    as_tutor gunicorn tutor.wsgi:application --bind 0.0.0.0:8000 --workers "${WEB_WORKERS:-4}" "$@" ;;
  worker)
    # Below the web processes in CPU priority (nice only counts where they share a machine): a fit can
    # wait a moment, a request should not (README, Scale: serving while fitting).
    as_tutor nice -n "${WORKER_NICE:-10}" celery -A tutor worker --loglevel=info \
      --concurrency="${WORKER_CONCURRENCY:-1}" "$@" ;;
  beat)
    # One for the whole deployment: it sends the periodic tasks (settings CELERY_BEAT_SCHEDULE: psikt's
    # absorb, the sweep of imports' pending mastery) to the queues; the workers run them.
    as_tutor celery -A tutor beat --loglevel=info --schedule /tmp/celerybeat-schedule "$@" ;;
  migrate)
    as_tutor python manage.py migrate --no-input ;;
  db)
    data=/var/lib/postgresql/data
    if [ ! -s "$data/PG_VERSION" ]; then
      install -d -o postgres -m 700 "$data"
      : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
      printf '%s' "$POSTGRES_PASSWORD" > /tmp/pgpass && chown postgres /tmp/pgpass
      setpriv --reuid=postgres --regid=postgres --init-groups \
        /usr/lib/postgresql/15/bin/initdb -D "$data" -U postgres --pwfile=/tmp/pgpass --auth=scram-sha-256
      rm -f /tmp/pgpass
      echo "host all all 0.0.0.0/0 scram-sha-256" >> "$data/pg_hba.conf"
      setpriv --reuid=postgres --regid=postgres --init-groups /usr/lib/postgresql/15/bin/pg_ctl -D "$data" -w start
      setpriv --reuid=postgres --regid=postgres --init-groups psql -v ON_ERROR_STOP=1 -U postgres \
        -c "CREATE ROLE tutor LOGIN PASSWORD '$POSTGRES_PASSWORD'" -c "CREATE DATABASE tutor OWNER tutor"
      setpriv --reuid=postgres --regid=postgres --init-groups /usr/lib/postgresql/15/bin/pg_ctl -D "$data" -w stop
    fi
    exec setpriv --reuid=postgres --regid=postgres --init-groups \
      /usr/lib/postgresql/15/bin/postgres -D "$data" -c listen_addresses='*' "$@" ;;
  redis)
    exec setpriv --reuid=redis --regid=redis --init-groups \
      redis-server --bind 0.0.0.0 --protected-mode no --save "" --appendonly no "$@" ;;
  proxy)
    exec nginx -c /app/deploy/nginx.conf -g 'daemon off;' "$@" ;;
  *)
    echo "usage: entrypoint.sh web|worker|beat|migrate|db|redis|proxy" >&2; exit 64 ;;
esac
