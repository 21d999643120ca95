"""One environment-driven settings module for Net Hospital.

Every setting that differs between a laptop demo and production is read from the environment;
docs/settings.md lists them. The embedded default is SQLite under ./var/, an in-memory channel
layer and in-process tasks. ``NETHOSPITAL_ENV=production`` turns on the safety checks at the end
of this file, which refuse to start an insecure deployment.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


PACKAGE_DIR = Path(__file__).resolve().parent
BASE_DIR = Path(os.environ.get("NETHOSPITAL_HOME", Path.cwd())).resolve()
VAR_DIR = Path(os.environ.get("NETHOSPITAL_VAR_DIR", BASE_DIR / "var")).resolve()

ENVIRONMENT = os.environ.get("NETHOSPITAL_ENV", "development").strip().lower()
IS_PRODUCTION = ENVIRONMENT == "production"

DEFAULT_SECRET_KEY = "nethospital-insecure-development-key-change-me"  # noqa: S105 - refused in production
SECRET_KEY = os.environ.get("SECRET_KEY", DEFAULT_SECRET_KEY)
# A separate key for identity numbers lets operators rotate SECRET_KEY (sessions) without
# re-keying every stored identity hash. It defaults to a derivation of SECRET_KEY.
IDENTITY_KEY = os.environ.get("NETHOSPITAL_IDENTITY_KEY", "")
# Earlier identity secrets (comma-separated), read only while `nethospital rekey_identities` moves the
# stored identities to the current one (docs/accounts.md, "Changing the identity key").
NETHOSPITAL_IDENTITY_OLD_KEYS = env_list("NETHOSPITAL_IDENTITY_OLD_KEYS", [])

DEBUG = env_bool("DEBUG", not IS_PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if IS_PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "nethospital.core.admin_site.NetHospitalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "axes",
    "nethospital.core",
    "nethospital.accounts",
    "nethospital.directory",
    "nethospital.records",
    "nethospital.demo",
    "nethospital.scheduling",
    "nethospital.consultations",
    "nethospital.prescriptions",
    "nethospital.traceability",
    "nethospital.pharmacy",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "nethospital.accounts.middleware.PreferredLanguageMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "nethospital.core.middleware.RequestContextMiddleware",
    "nethospital.accounts.middleware.StrongAuthenticationMiddleware",
    # Axes must be last so that it sees the outcome of every authentication attempt.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "nethospital.urls"
ASGI_APPLICATION = "nethospital.asgi.application"
WSGI_APPLICATION = "nethospital.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "nethospital.accounts.context_processors.roles",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
SQLITE_PATH = VAR_DIR / "nethospital.sqlite3"
DATABASE_URL = os.environ.get("DATABASE_URL", "")
# PostgreSQL gets a connection pool per server process (Django's psycopg pool): under ASGI every
# request in flight runs in a thread of its own, and without a pool each one opens a connection of
# its own, so a rush exhausts PostgreSQL's max_connections (docs/benchmarks.md). A request holds a
# pooled connection from its first query to its end and waits up to DB_POOL_TIMEOUT seconds for one.
DB_POOL = env_bool("DB_POOL", True)
DB_POOL_MIN_SIZE = int(os.environ.get("DB_POOL_MIN_SIZE", "2"))
DB_POOL_MAX_SIZE = int(os.environ.get("DB_POOL_MAX_SIZE", "8"))
DB_POOL_TIMEOUT = float(os.environ.get("DB_POOL_TIMEOUT", "10"))
# HTTP requests one server process computes at once (``nethospital serve``); the others wait in the
# event loop, holding neither a thread nor a connection. At most DB_POOL_MAX_SIZE: each gets a
# connection without waiting. 0: no limit.
NETHOSPITAL_CONCURRENT_REQUESTS = int(os.environ.get("NETHOSPITAL_CONCURRENT_REQUESTS", str(DB_POOL_MAX_SIZE)))
# The garbage collector of a server process (nethospital/core/gcpolicy.py): start-up objects frozen once
# the application is warmed up, so that full collections walk only what traffic made; thresholds as
# "gen0,gen1,gen2" (gc.set_threshold), empty keeps Python's.
NETHOSPITAL_GC_FREEZE = env_bool("NETHOSPITAL_GC_FREEZE", True)
NETHOSPITAL_GC_THRESHOLD = os.environ.get("NETHOSPITAL_GC_THRESHOLD", "")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0")))
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DB_POOL:
        if "pool" in DATABASES["default"].get("OPTIONS", {}):
            raise ImproperlyConfigured("DATABASE_URL must not carry 'pool': the pool is set by DB_POOL_* variables.")
        if DATABASES["default"]["CONN_MAX_AGE"] != 0:
            raise ImproperlyConfigured("DB_CONN_MAX_AGE must be 0 with the connection pool (or set DB_POOL=0).")
        if not 0 <= DB_POOL_MIN_SIZE <= DB_POOL_MAX_SIZE or DB_POOL_MAX_SIZE < 1:
            raise ImproperlyConfigured("Need 0 <= DB_POOL_MIN_SIZE <= DB_POOL_MAX_SIZE and DB_POOL_MAX_SIZE >= 1.")
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": DB_POOL_MIN_SIZE,
            "max_size": DB_POOL_MAX_SIZE,
            "timeout": DB_POOL_TIMEOUT,
        }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(SQLITE_PATH),
            "OPTIONS": {
                # WAL lets readers proceed during a write; IMMEDIATE takes the write lock at the start
                # of a transaction so two writers queue instead of failing half way.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channels, cache, tasks ---------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # Pub/sub: one PUBLISH per group send, pushed to the subscribed processes (no per-process list
            # to overflow, no blocking read that times out in a quiet room). At most once, which the chat
            # makes good from the database (gap fill, hello on reconnect): docs/benchmarks.md, chat.
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
                "prefix": os.environ.get("NETHOSPITAL_CHANNEL_PREFIX", "nethospital"),
            },
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

TASKS_BACKEND = os.environ.get("NETHOSPITAL_TASKS", "immediate" if not IS_PRODUCTION else "database")
TASKS = {
    "default": {
        "BACKEND": (
            "django_tasks_db.DatabaseBackend"
            if TASKS_BACKEND == "database"
            else "django_tasks.backends.immediate.ImmediateBackend"
        )
    }
}

# --- Accounts, login, MFA -----------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_ADAPTER = "nethospital.accounts.adapter.AccountAdapter"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_RATE_LIMITS: dict[str, str] | bool = False if env_bool("NETHOSPITAL_DISABLE_RATE_LIMITS", False) else {}
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_TOTP_ISSUER = "Net Hospital"
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = not IS_PRODUCTION
# Doctors, pharmacists, admins and regulators must have a second factor (R6).
# ``nethospital.accounts.policy`` enforces it; allauth only provides the factors.

AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_HOURS", "0.25"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "login"
AXES_USERNAME_CALLABLE = "nethospital.accounts.policy.axes_username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "account/lockout.html"
AXES_VERBOSE = False
AXES_ENABLED = env_bool("AXES_ENABLED", True)

# --- Internationalisation -----------------------------------------------------------------------
LANGUAGE_CODE = os.environ.get("NETHOSPITAL_LANGUAGE", "zh-hans")
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "nethospital_language"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
TIME_ZONE = os.environ.get("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- Static files -------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "/media-not-served/"  # uploads are served only through permission-checked views
# Without collectstatic (the embedded default) WhiteNoise serves straight from the finders.
WHITENOISE_USE_FINDERS = not IS_PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security -----------------------------------------------------------------------------------
SECURE_COOKIES = env_bool("NETHOSPITAL_SECURE_COOKIES", IS_PRODUCTION)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(12 * 3600)))
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if IS_PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
# Behind a reverse proxy the client address comes from X-Forwarded-For; only trust it when told.
TRUST_X_FORWARDED_FOR = env_bool("NETHOSPITAL_TRUST_X_FORWARDED_FOR", False)

# E-mail: printed to the console unless an SMTP host is given (then SMTP unless EMAIL_BACKEND says otherwise).
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)  # STARTTLS, usually port 587
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)  # implicit TLS, usually port 465
EMAIL_TIMEOUT = float(os.environ.get("EMAIL_TIMEOUT", "10"))
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are both on: choose one (STARTTLS or implicit TLS).")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Net Hospital <no-reply@nethospital.local>")

# --- Domain policy ------------------------------------------------------------------------------
# R5: a doctor needs at least this many years of independent practice.
NETHOSPITAL_MIN_PRACTICE_YEARS = int(os.environ.get("NETHOSPITAL_MIN_PRACTICE_YEARS", "3"))
# R3: below this age a patient is a young child who always has a guardian.
NETHOSPITAL_YOUNG_CHILD_AGE = 6
# Roles that must complete a second factor before touching patient data (R6).
NETHOSPITAL_MFA_REQUIRED_ROLES = ["doctor", "pharmacist", "hospital_admin", "regulator", "platform_admin"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Request logs can carry query strings; keep Django's own request logger at WARNING.
        "django.request": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

NINJA_PAGINATION_MAX_LIMIT = 100


# --- Production safety checks -------------------------------------------------------------------
def check_production_settings() -> list[str]:
    """What makes this configuration unfit for production (empty when it is fit)."""
    problems = []
    if SECRET_KEY == DEFAULT_SECRET_KEY or len(SECRET_KEY) < 32:
        problems.append("SECRET_KEY is the default or shorter than 32 characters")
    if DEBUG:
        problems.append("DEBUG is on")
    if not (SESSION_COOKIE_SECURE and CSRF_COOKIE_SECURE):
        problems.append("session and CSRF cookies are not marked Secure (NETHOSPITAL_SECURE_COOKIES)")
    if not ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS is empty")
    if EMAIL_HOST and EMAIL_HOST_PASSWORD and not (EMAIL_USE_TLS or EMAIL_USE_SSL):
        problems.append("SMTP credentials would be sent unencrypted (set EMAIL_USE_TLS or EMAIL_USE_SSL)")
    return problems


if IS_PRODUCTION:
    _problems = check_production_settings()
    if _problems:
        raise ImproperlyConfigured("Refusing to start in production: " + "; ".join(_problems) + ".")

# --- Booking (R30): rate limits per account and per client address, per minute -----------------
NETHOSPITAL_BOOKING_RATE_PER_ACCOUNT = int(os.environ.get("NETHOSPITAL_BOOKING_RATE_PER_ACCOUNT", "20"))
NETHOSPITAL_BOOKING_RATE_PER_ADDRESS = int(os.environ.get("NETHOSPITAL_BOOKING_RATE_PER_ADDRESS", "120"))
NETHOSPITAL_SIGNUP_RATE_PER_ADDRESS = int(os.environ.get("NETHOSPITAL_SIGNUP_RATE_PER_ADDRESS", "20"))  # per hour

# --- Consultations (issue 4) ----------------------------------------------------------------------
# How long a doctor has to accept an "ask a doctor" request before it lapses and is refunded.
NETHOSPITAL_ASK_ACCEPT_HOURS = int(os.environ.get("NETHOSPITAL_ASK_ACCEPT_HOURS", "24"))
# After a visit the patient may ask this many free follow-up questions within this many days.
NETHOSPITAL_FOLLOWUP_DAYS = int(os.environ.get("NETHOSPITAL_FOLLOWUP_DAYS", "7"))
NETHOSPITAL_FOLLOWUP_QUESTIONS = int(os.environ.get("NETHOSPITAL_FOLLOWUP_QUESTIONS", "5"))
# Average minutes a doctor spends per queued patient, for the estimated wait shown in the queue.
NETHOSPITAL_QUEUE_MINUTES_PER_PATIENT = int(os.environ.get("NETHOSPITAL_QUEUE_MINUTES_PER_PATIENT", "8"))
NETHOSPITAL_MESSAGE_MAX_CHARS = 4000
NETHOSPITAL_ATTACHMENT_MAX_BYTES = int(os.environ.get("NETHOSPITAL_ATTACHMENT_MAX_BYTES", str(10 * 1024 * 1024)))
# WebRTC ICE servers as JSON, e.g. [{"urls": "stun:stun.example.org:3478"},
# {"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}] (coturn: docs/consultations.md).
NETHOSPITAL_ICE_SERVERS = json.loads(os.environ.get("NETHOSPITAL_ICE_SERVERS", "[]"))
# Retention (R21): chat and call records at least 3 years, visit records at least 15.
NETHOSPITAL_CHAT_RETENTION_YEARS = 3
NETHOSPITAL_RECORD_RETENTION_YEARS = 15

# --- Prescriptions (issue 5) ---------------------------------------------------------------------
# Patients younger than this are children for prescribing (weight required, paediatric suitability).
NETHOSPITAL_CHILD_AGE = 14
NETHOSPITAL_MAX_PRESCRIPTION_ITEMS = 5
# Key-encryption key for the doctors' signing keys (defaults to a key derived from SECRET_KEY).
NETHOSPITAL_SIGNING_KEK = os.environ.get("NETHOSPITAL_SIGNING_KEK", "")

# --- Pharmacy and traceability (issue 6) ---------------------------------------------------------
# EPCIS capture limits, advertised by OPTIONS /epcis/capture (GS1-EPCIS-Capture-Limit / -File-Size-Limit).
NETHOSPITAL_EPCIS_CAPTURE_LIMIT = int(os.environ.get("NETHOSPITAL_EPCIS_CAPTURE_LIMIT", "5000"))
NETHOSPITAL_EPCIS_CAPTURE_FILE_SIZE_LIMIT = int(
    os.environ.get("NETHOSPITAL_EPCIS_CAPTURE_FILE_SIZE_LIMIT", str(10 * 1024 * 1024))
)
# GS1 company prefixes of our suppliers (where the GTIN's company prefix length is known exactly).
NETHOSPITAL_GS1_COMPANY_PREFIXES = env_list("NETHOSPITAL_GS1_COMPANY_PREFIXES", [])
# Two sightings of one box closer in time than this at different places are "impossible travel" (R20).
NETHOSPITAL_TRACE_MIN_TRAVEL_MINUTES = float(os.environ.get("NETHOSPITAL_TRACE_MIN_TRAVEL_MINUTES", "10"))
# Public code verification (/verify/<code>): requests per client address per minute.
NETHOSPITAL_VERIFY_RATE_PER_ADDRESS = int(os.environ.get("NETHOSPITAL_VERIFY_RATE_PER_ADDRESS", "60"))
# Base of the location URIs (bizLocation / readPoint) the platform writes for its own sites.
NETHOSPITAL_LOCATION_URI_BASE = os.environ.get("NETHOSPITAL_LOCATION_URI_BASE", "https://nethospital.example/loc/")
# Who received the boxes of a recalled batch (dotted path of a function; the pharmacy app's by default).
NETHOSPITAL_TRACE_RECIPIENTS = os.environ.get(
    "NETHOSPITAL_TRACE_RECIPIENTS", "nethospital.pharmacy.traceability.patients_for_packs"
)
# Codes one receiving scan may resolve; wrong delivery codes before a delivery is locked.
NETHOSPITAL_RECEIVE_MAX_CODES = int(os.environ.get("NETHOSPITAL_RECEIVE_MAX_CODES", "500"))
NETHOSPITAL_DELIVERY_CODE_ATTEMPTS = int(os.environ.get("NETHOSPITAL_DELIVERY_CODE_ATTEMPTS", "5"))
# An order not paid online within this many minutes is cancelled, freeing its prescription and stock.
NETHOSPITAL_ORDER_PAYMENT_MINUTES = int(os.environ.get("NETHOSPITAL_ORDER_PAYMENT_MINUTES", "30"))
# Payment providers by method (method → dotted path of a class), merged over the built-in sandbox and cash.
NETHOSPITAL_PAYMENT_PROVIDERS: dict[str, str] = json.loads(os.environ.get("NETHOSPITAL_PAYMENT_PROVIDERS", "{}"))
