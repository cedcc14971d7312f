"""Settings from the environment (12-factor). With nothing set: SQLite and in-process tasks."""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.dateparse import parse_duration
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-only-insecure-key-change-me" if DEBUG else environ.Env.NOTSET)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "drf_spectacular",
    "tutor",
    "curriculum",
    "tracing",
    # After tutor: the earlier app's command wins, and tutor's runserver extends staticfiles' own.
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tutor.urls"
WSGI_APPLICATION = "tutor.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A class answering at once through `make run`: every transaction that writes must wait its turn,
    # not fail with "database is locked". A DEFERRED transaction that reads and then writes cannot wait
    # (SQLite refuses the upgrade at once: waiting could deadlock), so transactions begin IMMEDIATE,
    # taking the write lock first and waiting up to `timeout` seconds for it (the busy timeout); WAL
    # lets reads (next item, pages) go on while one transaction writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL"}
    )
    # Tests on a file too: an in-memory test database shares one cache between connections, whose
    # table locks fail at once ("database table is locked") instead of waiting, so a fit on the
    # background thread could not run beside a request as it does under `make run`.
    DATABASES["default"].setdefault("TEST", {}).setdefault("NAME", str(BASE_DIR / "test-db.sqlite3"))
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["ENGINE"] = "tutor.postgresql"  # the same backend, a cheaper health check

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []
MEDIA_ROOT = Path(env("TUTOR_MEDIA_ROOT", default=str(BASE_DIR / "media")))
ARTIFACT_ROOT = Path(env("TUTOR_ARTIFACT_ROOT", default=str(BASE_DIR / "artifacts")))
"""Where fitted models are written with the file-system storage (the default), one folder per course."""

TUTOR_ARTIFACT_STORAGE = env("TUTOR_ARTIFACT_STORAGE", default="filesystem")
"""filesystem (ARTIFACT_ROOT: one machine, or a shared volume) or s3 (S3-compatible object storage
through django-storages: every web process and worker on any machine reads the same fits)."""
if TUTOR_ARTIFACT_STORAGE == "filesystem":
    _artifacts: dict[str, Any] = {"BACKEND": "tracing.artifacts.ArtifactFileSystemStorage"}
elif TUTOR_ARTIFACT_STORAGE == "s3":
    _artifacts = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env("TUTOR_ARTIFACT_BUCKET"),
            "location": env("TUTOR_ARTIFACT_PREFIX", default="artifacts"),
            "endpoint_url": env("TUTOR_ARTIFACT_S3_ENDPOINT", default=None),  # MinIO, Ceph, moto...
            "region_name": env("TUTOR_ARTIFACT_S3_REGION", default=None),
            "access_key": env("TUTOR_ARTIFACT_S3_ACCESS_KEY", default=None),  # None: boto3's usual chain
            "secret_key": env("TUTOR_ARTIFACT_S3_SECRET_KEY", default=None),
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": True,
        },
    }
else:
    raise ImproperlyConfigured(f"TUTOR_ARTIFACT_STORAGE must be filesystem or s3, not {TUTOR_ARTIFACT_STORAGE!r}")
TUTOR_ARTIFACT_CACHE = Path(env("TUTOR_ARTIFACT_CACHE", default=str(Path(tempfile.gettempdir()) / "tutor-artifacts")))
"""With object storage, where a process keeps the fits it downloaded (a fit's artifact never changes)."""
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "artifacts": _artifacts,
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Celery: in-process (eager) unless a broker is named.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="memory://")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not env("CELERY_BROKER_URL", default=""))
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=None)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {"visibility_timeout": 4000}
TRACING_MODEL_RECHECK = env.float("TRACING_MODEL_RECHECK", default=1.0)
"""Seconds a server process reuses a course's signature (active fit, items, skills, links, edges) before
reading it again (one query less per request); so a new fit or curriculum change made in another process
reaches this one within this time. 0: every request."""

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Knowledge-tracing tutor API",
    "DESCRIPTION": "Interactions in, mastery and next items out. Every path is scoped to one course.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
}

# --- REST API v1 and LTI 1.3 (tutor/api, tutor/lti) -------------------------------------------
INSTALLED_APPS += ["drf_spectacular_sidecar", "lti_tool", "tutor.lti"]

# One request may carry a 10,000-row batch (with free-text responses): allow it, refuse beyond.
TUTOR_API_MAX_BODY_BYTES = env.int("TUTOR_API_MAX_BODY_BYTES", default=16 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = TUTOR_API_MAX_BODY_BYTES


def _duration(name: str, default: str) -> timedelta:
    """Seconds (``86400``) or a duration Django reads (``P1D``, ``1 00:00:00``)."""
    text = env(name, default=default).strip()
    parsed = timedelta(seconds=float(text)) if re.fullmatch(r"\d+(\.\d+)?", text) else parse_duration(text)
    if parsed is None or parsed < timedelta(0):
        raise ImproperlyConfigured(f"{name}={text!r}: give seconds or a duration such as P1D")
    return parsed


def _moment(name: str, default: str) -> datetime:
    text = env(name, default=default).strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ImproperlyConfigured(f"{name}={text!r}: give an ISO 8601 moment such as 1970-01-01T00:00:00Z") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


# Every answer's moment (REST, xAPI, web page, file import) must lie in [earliest, now + skew] once in UTC:
# a moment the database cannot hold (past year 9999 in UTC) would otherwise break every later read of it.
TUTOR_EARLIEST_TIMESTAMP = _moment("TUTOR_EARLIEST_TIMESTAMP", "1970-01-01T00:00:00Z")
TUTOR_CLOCK_SKEW = _duration("TUTOR_CLOCK_SKEW", "86400")
TUTOR_API_RATE = env("TUTOR_API_RATE", default="6000/min")
"""Requests per API key (or per staff user) and period: N/sec, N/min, N/hour, N/day; a key's own rate
(admin) overrides it. One key usually serves a whole LMS: 500 learners answering every 10 s at their
quickest, two requests an answer (the answer, then the next item), is 500 x 6 x 2 = 6,000 a minute."""
TUTOR_API_ANON_RATE = env("TUTOR_API_ANON_RATE", default="60/min")
TUTOR_API_KEY_RECHECK = env.float("TUTOR_API_KEY_RECHECK", default=5.0)
"""Seconds a server process trusts an API key it found active before asking the database again
(one query less per request); so a revoked key stops working everywhere within this time. 0: every request."""
TUTOR_LEARNER_LOCK = env.bool("TUTOR_LEARNER_LOCK", default=True)
"""Serialise each learner's online mastery update (a row lock on the learner, PostgreSQL). A benchmark
switch only (bench/load.py --compare-lock measures the lock's cost): off, answers for one learner that
arrive at once lose each other's updates."""

# Authentication, permissions, throttles and parsers are set on the API's base view (tutor/api/views.py),
# so other DRF views keep DRF's defaults; errors everywhere share one JSON shape.
REST_FRAMEWORK["EXCEPTION_HANDLER"] = "tutor.api.exceptions.api_exception_handler"

SPECTACULAR_SETTINGS.update(
    {
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
        "COMPONENT_SPLIT_REQUEST": True,
        "SCHEMA_PATH_PREFIX": r"/api/v1",
    }
)

# pylti1p3 keeps OIDC state and nonces in the cache: with several web processes it must be shared
# (CACHE_URL=redis://... or a database cache), or a launch may land on a process that never saw its login.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# xAPI exports name learners' accounts and activities under this IRI (tutor/exports.py): the server's public
# address, so statements sent to an LRS say where they came from.
TUTOR_XAPI_BASE_IRI = env("TUTOR_XAPI_BASE_IRI", default="http://localhost:8000")
TUTOR_LTI_LAUNCH_REDIRECT = env("TUTOR_LTI_LAUNCH_REDIRECT", default="/learn/{course}/")
"""Where a successful LTI launch sends the learner; {course} is the course slug."""
TUTOR_LTI_TEACHER_REDIRECT = env(
    "TUTOR_LTI_TEACHER_REDIRECT", default="/dashboard/{course}/learners/?class={course_class}"
)
"""Where an instructor's (teaching assistant's, administrator's) launch sends them; {course_class} is the class id."""
TUTOR_FLAG_NO_PROGRESS_ANSWERS = env.int("TUTOR_FLAG_NO_PROGRESS_ANSWERS", default=10)
"""The dashboard flags a learner whose mean mastery has not risen over their last this many answers."""
TUTOR_FLAG_QUIET_DAYS = env.int("TUTOR_FLAG_QUIET_DAYS", default=7)
"""The dashboard flags a learner who started but has not answered for this many days."""
TUTOR_FLAG_STUCK_ANSWERS = env.int("TUTOR_FLAG_STUCK_ANSWERS", default=6)
"""The dashboard flags a learner sent to remediation whose struggling skill has not risen over this many answers."""
TUTOR_LTI_IFRAME = env.bool("TUTOR_LTI_IFRAME", default=False)
TUTOR_LTI_FRAME_ANCESTORS = env.list("TUTOR_LTI_FRAME_ANCESTORS", default=["https:"])
"""Origins allowed to frame the learner pages when TUTOR_LTI_IFRAME is on (CSP frame-ancestors)."""
if TUTOR_LTI_IFRAME:
    # An LMS embeds the tool in a cross-site iframe: cookies must be SameSite=None (and so Secure).
    SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "None"
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
# --- end REST API v1 and LTI 1.3 --------------------------------------------------------------

# --- Production safety and fault tolerance (tutor/health.py, tests/tutor/test_security.py) ----
# With DJANGO_DEBUG=false, `manage.py check --deploy` is clean once DJANGO_HSTS_SECONDS is set.
# HSTS stays opt-in: browsers remember it, so an operator turns it on once TLS is there to stay.
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=SECURE_HSTS_SECONDS > 0)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=SECURE_HSTS_SECONDS > 0)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancers probe over plain HTTP: the health check must answer there, not redirect.
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    # Only behind a proxy that sets this header itself; otherwise a client could claim HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True

# Request bodies are bounded (the API's 16 MiB batch limit above covers JSON); form posts carry few fields.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# Fail fast when the broker is down: a fit request answers 503 in a second instead of hanging on
# connection retries; recording and next-item never touch the broker.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_BROKER_TRANSPORT_OPTIONS.update({"socket_connect_timeout": 2.0, "socket_timeout": 10.0, "max_retries": 1})
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 2.0
CELERY_REDIS_SOCKET_TIMEOUT = 10.0
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    # A database that stops answering fails a request in seconds rather than holding a worker.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
MIDDLEWARE += ["tutor.health.DatabaseUnavailableMiddleware"]
# --- end production safety and fault tolerance -------------------------------------------------

# --- Fits: where they run, how many, how long (tracing/services.py, tracing/background.py) ------
TRACING_FITS_INLINE = env.bool("TRACING_FITS_INLINE", default=False)
"""Without a broker, fits run on a background thread of the web process, so a fit request answers at
once; true runs them inside the request instead (as Celery's eager mode would). Commands always run theirs inline."""
TRACING_FITS_PER_COURSE = env.int("TRACING_FITS_PER_COURSE", default=2)
"""Fits of one course that may be queued or running at once; one more is refused with 409 naming the holder."""
TRACING_FIT_TIME_LIMIT_BASE = env.int("TRACING_FIT_TIME_LIMIT_BASE", default=600)
TRACING_FIT_TIME_LIMIT_PER_1000_ANSWERS = env.float("TRACING_FIT_TIME_LIMIT_PER_1000_ANSWERS", default=10.0)
TRACING_FIT_TIME_LIMIT_MAX = env.int("TRACING_FIT_TIME_LIMIT_MAX", default=3 * 3600)
"""A fit may run base + per-1000-answers x answers/1000 seconds, at most MAX, per attempt (the held-out
fit, the full fit and the evaluation together); past it, it is stopped and marked failed."""


def _number(name: str, default: float, low: float, high: float) -> float:
    """A number setting within [low, high], or ImproperlyConfigured naming it (NaN and text included)."""
    text = env.str(name, default=str(default)).strip()
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise ImproperlyConfigured(f"{name}={text!r}: give a number between {low:g} and {high:g}")
    return value


TRACING_RECOMPUTE_BATCH = int(_number("TRACING_RECOMPUTE_BATCH", 500, 1, 10**7))
"""Learners per batch of a fit's mastery recompute (its activation): each batch one upsert of their mastery
rows (25,000 with 50 skills) and traces. Smaller batches spread the recompute's writes more evenly, so the
pauses below come often and each statement holds the database briefly."""
TRACING_RECOMPUTE_PAUSE = _number("TRACING_RECOMPUTE_PAUSE", 1.0, 0.0, 100.0)
"""After each batch of the recompute its worker pauses this many times as long as the batch took (0: none).
The recompute's PostgreSQL backend runs at the database's priority, which the worker's nice does not reach:
at 1.0 it takes at most half of one core, and writes its WAL at half the rate, while the web serves
(README, Scale: serving while fitting). The activation, and the fitted course's learners it holds, take
(1 + pause) times as long."""
# Redis hands an unacknowledged task to another worker after the visibility timeout: it must outlast
# the longest fit, or a long fit would run twice.
CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] = max(
    CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 0), TRACING_FIT_TIME_LIMIT_MAX + 400
)

# Queues by kind of work, so that machines can specialise: a plain `celery -A tutor worker` takes every
# queue below (CPU fits, LMS grade passback, maintenance); a worker with a GPU adds `-Q fits-gpu`
# (or takes only that), and the kinds named in TRACING_GPU_KINDS are sent there. LMS passback waits
# on other servers, so it has its own queue: a slow LMS never holds a fit's place, and a long fit
# never delays grades.
TRACING_FIT_QUEUE = "fits"
TRACING_GPU_FIT_QUEUE = "fits-gpu"
TRACING_GPU_KINDS = env.list("TRACING_GPU_KINDS", default=[])
"""Model kinds whose fits go to the GPU queue (e.g. dkt,cakt,sakt where GPU workers run); none by default."""
TRACING_BKT_SHARDS = env.int("TRACING_BKT_SHARDS", default=1)
"""Worker tasks a BKT fit's EM is split over, by skill, when its params name no ``shards``: with a broker
and a result backend a Celery chord (one task per shard on the fits queue, then a merge task); else the
shards run one after the other in the fit's own process. Every count gives the same fit."""
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = [Queue(name) for name in ("celery", TRACING_FIT_QUEUE, "lms", "maintenance")]
CELERY_TASK_ROUTES = {
    "tracing.tasks.fit_run_task": {"queue": TRACING_FIT_QUEUE},  # GPU kinds: tracing.tasks.fit_queue
    "tracing.tasks.fit_shard_task": {"queue": TRACING_FIT_QUEUE},
    "tracing.tasks.fit_merge_task": {"queue": TRACING_FIT_QUEUE},
    "tutor.lti.tasks.lti_grade_passback_task": {"queue": "lms"},
    "tutor.lti.tasks.lti_roster_sync_task": {"queue": "lms"},
    "tracing.tasks.ping_task": {"queue": "maintenance"},
    "tracing.tasks.traits_refresh_task": {"queue": "maintenance"},
    "tracing.tasks.fits_absorb_task": {"queue": "maintenance"},
    "tutor.tasks.mastery_pending_task": {"queue": "maintenance"},
}
TRACING_TRAITS_DELAY = env.float("TRACING_TRAITS_DELAY", default=2.0)
"""Seconds a learner's trait refresh waits after their answer, so a burst of answers is one refresh
(tracing.tasks.traits_queue); the answer's own online mastery update does not wait."""
TRACING_ABSORB_EVERY = env.float("TRACING_ABSORB_EVERY", default=3600.0)
"""Seconds between celery beat's absorbs of each course's new answers into its active psikt fit
(continual learning without a refit; `celery -A tutor beat` runs the schedule)."""
TUTOR_PENDING_SWEEP_EVERY = _number("TUTOR_PENDING_SWEEP_EVERY", 300.0, 1.0, 7 * 86400.0)
"""Seconds between celery beat's sweeps that finish the mastery refresh of learners a file import left
marked pending (an import refreshes its learners itself once it has committed; the sweep catches one whose
process ended first: tutor.tasks.mastery_pending_task)."""
CELERY_BEAT_SCHEDULE = {
    "absorb-new-answers": {"task": "tracing.tasks.fits_absorb_task", "schedule": TRACING_ABSORB_EVERY},
    "finish-pending-mastery": {"task": "tutor.tasks.mastery_pending_task", "schedule": TUTOR_PENDING_SWEEP_EVERY},
}
# --- end fits -------------------------------------------------------------------------------------

# --- Sign-in throttling and client addresses (tutor/client_ip.py, tests/tutor/test_access.py) -----
# django-axes counts failed sign-ins (the login page, the admin's, anything that calls authenticate())
# per username *and* client address, so a guesser is stopped without letting anyone lock a user out
# from elsewhere; a success clears the count.
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # last, as axes asks: it turns a lockout into its page
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("TUTOR_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("TUTOR_LOGIN_COOLOFF_MINUTES", default=15))
"""How long a locked username+address pair waits; `manage.py axes_reset` (or the admin) lifts it at once."""
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # no start-up banner on every management command's output
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"
AXES_LOCKOUT_CALLABLE = "tutor.client_ip.lockout_response"  # axes's page, plus Retry-After
AXES_HTTP_RESPONSE_CODE = 429
TUTOR_PROXY_COUNT = env.int("TUTOR_PROXY_COUNT", default=0)
"""Reverse proxies in front of the app that append the client to X-Forwarded-For. 0: the client is
REMOTE_ADDR (a header a client sends itself is never trusted)."""
if TUTOR_PROXY_COUNT:
    AXES_IPWARE_META_PRECEDENCE_ORDER: tuple[str, ...] = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    AXES_IPWARE_PROXY_COUNT = TUTOR_PROXY_COUNT
    AXES_IPWARE_PROXY_ORDER = "right-most"  # each proxy appends; the left part is the client's to forge
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
TUTOR_LTI_LOGIN_RATE = env("TUTOR_LTI_LOGIN_RATE", default="120/min")
"""LTI login requests per client address and period (a launch makes two; each may store a nonce in the
cache). A school behind one NAT address shares it: raise it there."""
TUTOR_LTI_STATE_LIFETIME = env.int("TUTOR_LTI_STATE_LIFETIME", default=600)
"""Seconds an OIDC login's nonce waits for its launch (pylti1p3's own default is a day)."""
# --- end sign-in throttling --------------------------------------------------------------------
