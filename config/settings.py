"""offerlab settings: everything that varies between machines comes from the environment.

The contract (names and defaults) is in ../shared/DESIGN.md; the README lists it for operators.
"""

import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from . import queues as celery_queues
from .env import env_bool, env_int, env_list, env_str, load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env")

# var/ holds everything the app writes locally: the SQLite file, the embedded broker's
# queue folders, import reject files. It is git-ignored.
VAR_DIR = Path(env_str("OFFERLAB_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", default=False)
# `make run` writes a key of this machine's own to var/secret_key: read it, so every command
# the README prints works in any shell, not only in the processes `make run` starts.
SECRET_KEY = env_str("SECRET_KEY") or (
    (VAR_DIR / "secret_key").read_text().strip() if (VAR_DIR / "secret_key").is_file() else ""
)
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG off offerlab refuses to start without one: "
            "set SECRET_KEY in the environment or in .env (for local work, DEBUG=true uses "
            "a throwaway development key)."
        )
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", SITE_URL)

INSTALLED_APPS = [
    "core.apps.AdminConfig",  # Django's admin, open to the Admin role as well as to staff
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from here, not from a CDN
    "axes",
    "django_celery_beat",
    "django_htmx",
    "anymail",
    "core",
    "customers",
    "segments",
    "experiments",
    "campaigns",
    "web",
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
    "django_htmx.middleware.HtmxMiddleware",
    "core.middleware.ContentSecurityPolicyMiddleware",
    "core.middleware.NulByteMiddleware",
    "core.statement_timeout.StatementTimeoutMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into a 429 page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out login before checking it
    "django.contrib.auth.backends.ModelBackend",
]
# Brute force: after AXES_FAILURE_LIMIT wrong passwords for one user from one address, that
# pair is locked out for AXES_COOLOFF_MINUTES (the web login and /api/token/ alike).
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            # Every template spells numbers and times through core.formatting without {% load %}.
            "builtins": ["core.templatetags.present"],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "offerlab.sqlite3",
            # The web server, the worker and beat share one file: WAL lets readers and a
            # writer overlap, IMMEDIATE transactions avoid deadlocks on lock upgrades.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # A file, not :memory:, so a worker process started by a test sees the test data.
            # One file per test run: two runs side by side must not share (and lock) one file.
            "TEST": {"NAME": VAR_DIR / f"test-offerlab-{os.getpid()}.sqlite3"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# --- Security with DEBUG off ----------------------------------------------------------
# Behind TLS (SITE_URL https://...) cookies are secure by default; the rest is set by the
# operator (README "Running in production"), so `check --deploy` is clean from the environment.
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=not DEBUG and SITE_URL.startswith("https"))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
# /healthz answers plain http on the host's own address (load balancers, probes).
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"  # previews are srcdoc frames: no page of ours is ever framed
# Sent on every response (core.middleware): scripts, styles and frames from this site only.
CONTENT_SECURITY_POLICY = env_str(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; img-src 'self' data: https:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'; object-src 'none'",
)

# --- REST API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    # The token first: a request without credentials is then told 401 and how to authenticate.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.permissions.RolePermission"],
    # DRF's own parsers, refusing a NUL byte in any value with a 400 naming the field (core.nul).
    "DEFAULT_PARSER_CLASSES": ["core.nul.JSONParser", "core.nul.FormParser", "core.nul.MultiPartParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "60/min"),
        "user": env_str("API_THROTTLE_USER", "100000/hour"),
        "token": env_str("API_THROTTLE_TOKEN", "10/min"),  # password guesses at /api/token/
    },
}
# API tokens expire: a leaked token stops working by itself. POST /api/token/ answers a new
# one once the old has expired, POST /api/token/rotate/ replaces it at once.
API_TOKEN_TTL_HOURS = env_int("API_TOKEN_TTL_HOURS", 30 * 24)
# PostgreSQL cancels a web request's statement after this many milliseconds (the user is told
# to narrow the query); workers get their own limit, 0 = none. Keep the web one below
# gunicorn's --timeout so the database stops the statement before the web worker is killed.
WEB_STATEMENT_TIMEOUT_MS = env_int("WEB_STATEMENT_TIMEOUT_MS", 15000)
WORKER_STATEMENT_TIMEOUT_MS = env_int("WORKER_STATEMENT_TIMEOUT_MS", 0)
SPECTACULAR_SETTINGS = {
    "TITLE": "offerlab API",
    "DESCRIPTION": "Customers, segments, campaigns and experiments.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Three models have a field called "kind": name each enum after its owner.
    "ENUM_NAME_OVERRIDES": {
        "SegmentKindEnum": "segments.models.Segment.Kind",
        "SegmentModelKindEnum": "segments.models.SegmentModel.Kind",
        "MetricKindEnum": "experiments.kinds.KIND_CHOICES",
    },
}

# --- Celery ---------------------------------------------------------------------------
# Unset: kombu's filesystem transport, a broker that is just two folders under var/, so a
# real worker process runs with no server to install. Set: redis:// or amqp://.
# (a hostname, though the transport ignores it: kombu warns on every connection without one)
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://localhost/"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 25 * 60)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 30 * 60)
# One task at a time per worker process: long tasks must not hide short ones in a prefetch.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = False  # opt in per task, only where the task is idempotent
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers an unacked message after the visibility timeout: it must outlast the
# longest task and any countdown, or a message would run twice. Schedules longer than an
# hour live in the database, never as an ETA.
CELERY_MAX_COUNTDOWN = 60 * 60
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 60 * 60}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # else kombu writes ./control/
        "store_processed": False,
    }
# Queues by kind of work (config/queues.py): default, sending, models, reports. A worker
# takes some with -Q (`celery -A config worker -Q offerlab.sending`), or all without it.
# Their names start with CELERY_QUEUE: tests and several deployments on one broker keep apart.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "offerlab")
CELERY_TASK_QUEUES = celery_queues.task_queues(CELERY_TASK_DEFAULT_QUEUE)
CELERY_TASK_ROUTES = celery_queues.task_routes(CELERY_TASK_DEFAULT_QUEUE)
# The cache is shared by the web server and every worker (progress of imports, rate
# limits), so it cannot be per-process memory: Redis when the broker is Redis, else files.
if CELERY_BROKER_URL.startswith("redis"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CELERY_BROKER_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(VAR_DIR / "cache")}}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- Email providers ------------------------------------------------------------------
EMAIL_PROVIDER = env_str("EMAIL_PROVIDER", "outbox").lower()
ANYMAIL_BACKENDS = {
    "postmark": "anymail.backends.postmark.EmailBackend",
    "mailgun": "anymail.backends.mailgun.EmailBackend",
    "amazon_ses": "anymail.backends.amazon_ses.EmailBackend",
    "resend": "anymail.backends.resend.EmailBackend",
    "brevo": "anymail.backends.brevo.EmailBackend",
    "sparkpost": "anymail.backends.sparkpost.EmailBackend",
    "mailjet": "anymail.backends.mailjet.EmailBackend",
    "mailersend": "anymail.backends.mailersend.EmailBackend",
    "mandrill": "anymail.backends.mandrill.EmailBackend",
    "postal": "anymail.backends.postal.EmailBackend",
}
if EMAIL_PROVIDER == "outbox":
    EMAIL_BACKEND = "campaigns.outbox.OutboxBackend"
elif EMAIL_PROVIDER in ANYMAIL_BACKENDS:
    EMAIL_BACKEND = ANYMAIL_BACKENDS[EMAIL_PROVIDER]
else:
    raise ImproperlyConfigured(
        f"EMAIL_PROVIDER={EMAIL_PROVIDER!r} is not known; use 'outbox' or one of: "
        + ", ".join(sorted(ANYMAIL_BACKENDS))
    )


def _anymail_settings() -> dict:
    """Every <PROVIDER>_* variable becomes an ANYMAIL setting of the same name.

    So POSTMARK_SERVER_TOKEN, POSTMARK_API_URL, MAILGUN_API_KEY, MAILGUN_API_URL ... reach
    anymail unchanged, and a staging or test server stands in through its *_API_URL.
    """
    settings: dict = {}
    for provider in ANYMAIL_BACKENDS:
        prefix = provider.upper() + "_"
        settings.update({k: v for k, v in os.environ.items() if k.startswith(prefix)})
    endpoint = os.environ.get("AMAZON_SES_ENDPOINT_URL")
    if endpoint:
        settings.pop("AMAZON_SES_ENDPOINT_URL", None)
        settings["AMAZON_SES_CLIENT_PARAMS"] = {"endpoint_url": endpoint}
    if os.environ.get("ANYMAIL_WEBHOOK_SECRET"):
        settings["WEBHOOK_SECRET"] = os.environ["ANYMAIL_WEBHOOK_SECRET"]
    return settings


ANYMAIL = _anymail_settings()
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "offers@example.com")

# --- Campaign sending (campaigns/) ---------------------------------------------------
# Messages per second for the provider account, shared by every worker (0: no limit).
CAMPAIGN_RATE_LIMIT = float(env_str("CAMPAIGN_RATE_LIMIT", "0") or 0)
CAMPAIGN_RATE_REDIS_URL = env_str("CAMPAIGN_RATE_REDIS_URL")  # default: the broker, if Redis
CAMPAIGN_BATCH_SIZE = env_int("CAMPAIGN_BATCH_SIZE", 500)  # rows per claim
CAMPAIGN_SEND_PARALLELISM = env_int("CAMPAIGN_SEND_PARALLELISM", 2)  # send tasks per campaign
# A first launch to this many members or more is written in ranges of customer ids, on
# this many database connections at once (campaigns/services/launch_write.py); 1 writes it
# in one statement. More connections help as far as the database server has cores.
CAMPAIGN_LAUNCH_CONNECTIONS = env_int("CAMPAIGN_LAUNCH_CONNECTIONS", 2)
CAMPAIGN_LAUNCH_RANGED_FROM = env_int("CAMPAIGN_LAUNCH_RANGED_FROM", 50_000)
CAMPAIGN_LAUNCH_RANGE_ROWS = env_int("CAMPAIGN_LAUNCH_RANGE_ROWS", 100_000)  # at most about this many per range
CAMPAIGN_TASK_SECONDS = env_int("CAMPAIGN_TASK_SECONDS", 30)  # a send task's time budget
CAMPAIGN_SEND_TIMEOUT = float(env_str("CAMPAIGN_SEND_TIMEOUT", "15") or 15)  # seconds per provider call
# A claimed row's lease: longer than any provider call, or a slow worker's row could be
# reconciled (and resent) while its request is still in flight.
CAMPAIGN_LEASE_SECONDS = env_int("CAMPAIGN_LEASE_SECONDS", 120)
CAMPAIGN_RECONCILE_AFTER_SECONDS = env_int("CAMPAIGN_RECONCILE_AFTER_SECONDS", 300)
CAMPAIGN_STALE_SECONDS = env_int("CAMPAIGN_STALE_SECONDS", 60)  # no heartbeat: wake new workers
CAMPAIGN_RETRY_BASE_SECONDS = float(env_str("CAMPAIGN_RETRY_BASE_SECONDS", "2") or 2)
CAMPAIGN_RETRY_MAX_SECONDS = float(env_str("CAMPAIGN_RETRY_MAX_SECONDS", "900") or 900)
CAMPAIGN_MAX_RETRIES = env_int("CAMPAIGN_MAX_RETRIES", 10)
CAMPAIGN_POSTMARK_BATCH = env_bool("CAMPAIGN_POSTMARK_BATCH", default=True)
CAMPAIGN_MAILGUN_BATCH = env_bool("CAMPAIGN_MAILGUN_BATCH", default=True)
CAMPAIGN_PUMP_SECONDS = env_int("CAMPAIGN_PUMP_SECONDS", 10)
# Webhook events older than this are replays: ignored.
CAMPAIGN_WEBHOOK_MAX_AGE_SECONDS = env_int("CAMPAIGN_WEBHOOK_MAX_AGE_SECONDS", 3 * 24 * 3600)
# Marketer templates are untrusted code: each message's render (all its parts) gets this
# much wall-clock time and each part this much output; past it, the campaign fails.
TEMPLATE_RENDER_SECONDS = float(env_str("TEMPLATE_RENDER_SECONDS", "2") or 2)
TEMPLATE_MAX_OUTPUT_KB = env_int("TEMPLATE_MAX_OUTPUT_KB", 512)
# The periodic jobs themselves are declared in core/schedules.py (periodic_jobs).

# --- Imports (customers/) -------------------------------------------------------------
# The largest file the import page takes; bigger files are refused before they are stored.
# The import_* commands read files in place and have no limit.
IMPORT_MAX_UPLOAD_MB = env_int("IMPORT_MAX_UPLOAD_MB", 100)

# --- Logging --------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "stream": sys.stderr}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
