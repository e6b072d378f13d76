"""Settings from the environment (SERVICEHUB_* and DATABASE_URL); SQLite under the instance folder by default."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from servicehub.registry.rules import BoundingBox

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
SEED_DIR = PROJECT_DIR / "seed_data"

DEFAULT_TIMEZONE = "Asia/Shanghai"
LANGUAGES = ("zh", "en")  # default first
DEFAULT_DISTRICT_BBOX = "32.05,119.40,32.35,119.95"  # the demo district (镇江新区) with a margin


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and why."""


def normalise_database_url(url: str) -> str:
    """Accept the common spellings of a PostgreSQL URL and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def secret_key_from_instance(instance_path: str) -> str:
    """Read the instance's secret key, generating and storing it (mode 0600) on first use."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def data_key_from_instance(instance_path: str) -> str:
    """Read the instance's data-encryption key (base64), generating and storing it (mode 0600) on first use.

    Back it up with the database: without it, encrypted ID numbers cannot be read.
    """
    path = Path(instance_path) / "data_key"
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    return _new_instance_key(path)


def _new_instance_key(path: Path) -> str:
    """A fresh key (base64 of 32 random bytes) written to `path`, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def _decode_key(value: str, name: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise ConfigError(f"{name} is not base64") from exc
    if len(key) != 32:
        raise ConfigError(f"{name} must be 32 bytes (base64 of 32 random bytes)")
    return key


def decode_data_key(value: str) -> bytes:
    """The 32-byte key from its base64 form; ConfigError if it is not one."""
    return _decode_key(value, "SERVICEHUB_DATA_KEY")


def ledger_key_from_instance(instance_path: str) -> str:
    """Read the instance's checkpoint-signing key (base64 of a 32-byte Ed25519 seed), generating and storing it
    (mode 0600) on first use; ConfigError if the file can be read by anyone but its owner.

    Keep a copy away from the database and its backups: whoever holds it can sign a checkpoint.
    """
    path = Path(instance_path) / "ledger_key"
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(f"{path} has mode {mode:04o}: the signing key must be readable by its owner only "
                              f"(chmod 600 {path})")
        key = path.read_text().strip()
        decode_ledger_key(key)
        return key
    return _new_instance_key(path)


def decode_ledger_key(value: str) -> bytes:
    """The 32-byte Ed25519 seed from its base64 form; ConfigError if it is not one."""
    return _decode_key(value, "SERVICEHUB_LEDGER_KEY")


def settings_from_env(instance_path: str, environ: dict[str, str] | None = None) -> dict:
    """Return the application settings read from the environment."""
    env = os.environ if environ is None else environ
    database_url = env.get("DATABASE_URL") or f"sqlite:///{Path(instance_path) / 'servicehub.db'}"
    timezone = env.get("SERVICEHUB_TIMEZONE", DEFAULT_TIMEZONE)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"SERVICEHUB_TIMEZONE={timezone!r} is not a known IANA time zone") from exc
    bbox = env.get("SERVICEHUB_DISTRICT_BBOX", DEFAULT_DISTRICT_BBOX)
    try:
        BoundingBox.parse(bbox)
    except ValueError as exc:
        raise ConfigError(f"SERVICEHUB_DISTRICT_BBOX={bbox!r}: {exc}") from exc
    return {
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
        # The role that owns the tables, for `servicehub db upgrade` (and restores); the app itself connects as
        # DATABASE_URL's role, which `servicehub db grant-app-role` lets read and add to the ledgers, not rewrite them.
        "SERVICEHUB_MIGRATION_DATABASE_URI": normalise_database_url(env["SERVICEHUB_MIGRATION_DATABASE_URL"])
        if env.get("SERVICEHUB_MIGRATION_DATABASE_URL") else None,
        "SERVICEHUB_TIMEZONE": timezone,
        "SECRET_KEY": env.get("SECRET_KEY") or None,
        "SERVICEHUB_DATA_KEY": env.get("SERVICEHUB_DATA_KEY") or None,
        # Signs the checkpoints (`servicehub audit checkpoint`); kept out of the database and its backups.
        "SERVICEHUB_LEDGER_KEY": env.get("SERVICEHUB_LEDGER_KEY") or None,
        # Where checkpoints are written (default: the instance folder's checkpoints/); auditors copy them away.
        "SERVICEHUB_CHECKPOINT_DIR": env.get("SERVICEHUB_CHECKPOINT_DIR") or None,
        # lat_min,lon_min,lat_max,lon_max: coordinates outside are refused as typing mistakes.
        "SERVICEHUB_DISTRICT_BBOX": bbox,
        "SERVICEHUB_ENV": env.get("SERVICEHUB_ENV", "development"),
        "SESSION_COOKIE_SECURE": env.get("SERVICEHUB_SECURE_COOKIES", "").lower() in {"1", "true", "yes"},
        "SERVICEHUB_DETECT_SECONDS": int(env["SERVICEHUB_DETECT_SECONDS"]) if env.get("SERVICEHUB_DETECT_SECONDS") else None,
        "SERVICEHUB_SCORE_WEIGHTS": score_weights(env.get("SERVICEHUB_SCORE_WEIGHTS", "")),
        # Reverse proxies in front of the app (nginx …) whose X-Forwarded-For/-Proto to trust: the client's
        # address is what sign-in and the public form's flood limits count.
        "SERVICEHUB_PROXIES": _count("SERVICEHUB_PROXIES", env.get("SERVICEHUB_PROXIES", "0")),
    }


def _count(name: str, value: str) -> int:
    if not value.strip().isdigit():
        raise ConfigError(f"{name}={value!r}: a whole number (0 or more)")
    return int(value)


ENVIRONMENTS = ("development", "production")
# Secrets that are somebody's example, not a secret.
WEAK_SECRETS = frozenset({"dev", "development", "secret", "secret-key", "change-me", "changeme", "test-secret-key",
                          "bench", "servicehub"})


def production_problems(config: dict, *, secret_given: bool, data_key_given: bool) -> list[str]:
    """What keeps these settings from running in production (none: they may). `secret_given`/`data_key_given`:
    whether SECRET_KEY and SERVICEHUB_DATA_KEY came from the environment rather than the instance folder."""
    problems = []
    secret = config.get("SECRET_KEY") or ""
    if not secret_given:
        problems.append("SECRET_KEY is not set: each machine would generate its own (instance/secret_key), so "
                        "sessions and tokens would not hold across machines. Set 32 or more random characters.")
    elif len(secret) < 32 or secret.lower() in WEAK_SECRETS:
        problems.append("SECRET_KEY is a default or shorter than 32 characters: set 32 or more random characters "
                        "(python -c 'import secrets; print(secrets.token_hex(32))').")
    if not data_key_given:
        problems.append("SERVICEHUB_DATA_KEY is not set: each machine would generate its own (instance/data_key) "
                        "and could not read the ID numbers another one encrypted. Set it, and back it up.")
    if not config.get("SERVICEHUB_LEDGER_KEY"):
        problems.append("SERVICEHUB_LEDGER_KEY is not set: each machine would generate its own (instance/ledger_key) "
                        "and sign checkpoints the others cannot check. Set it, and keep a copy away from the "
                        "database and its backups.")
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        problems.append("DATABASE_URL is SQLite: production runs on PostgreSQL (several processes and machines "
                        "write at once).")
    if config.get("DEBUG"):
        problems.append("Debug is on (FLASK_DEBUG): it shows tracebacks and offers a debugger. Turn it off.")
    if config.get("TESTING"):
        problems.append("TESTING is on. Turn it off.")
    if not config.get("SESSION_COOKIE_SECURE"):
        problems.append("SERVICEHUB_SECURE_COOKIES is off: production is served over HTTPS, so session cookies "
                        "must be Secure. Set it to 1.")
    return problems


def score_weights(value: str) -> dict[str, float]:
    """The organisation score's weights from JSON such as {"satisfaction": 0.3}: the defaults with those applied."""
    from servicehub.evaluation.score import checked_weights

    try:
        return checked_weights(json.loads(value) if value.strip() else None)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"SERVICEHUB_SCORE_WEIGHTS={value!r}: {exc}") from exc


# Settings that do not come from the environment: the API's shape and library defaults.
STATIC_SETTINGS: dict = {
    "SQLALCHEMY_TRACK_MODIFICATIONS": False,
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "API_TITLE": "ServiceHub API",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
    "API_SPEC_OPTIONS": {
        "info": {
            "description": "ServiceHub: service-type social assistance (服务类社会救助). "
            "Names are in Chinese by default; send `Accept-Language: en` or `?lang=en` for English. "
            "Errors are application/problem+json: `{code, status, message, errors}`.",
        },
    },
    "BABEL_DEFAULT_LOCALE": "zh",
    "BABEL_TRANSLATION_DIRECTORIES": str(PACKAGE_DIR / "translations"),
    "BABEL_DEFAULT_TIMEZONE": DEFAULT_TIMEZONE,
    "SERVICEHUB_LANGUAGES": LANGUAGES,
    # Sessions and CSRF: cookies are HttpOnly and SameSite; CSRF is checked for every cookie-authenticated
    # write by servicehub.auth.access (bearer-token API calls need none), not by Flask-WTF's own hook.
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "servicehub_session",
    "PERMANENT_SESSION_LIFETIME": 8 * 3600,
    "REMEMBER_COOKIE_DURATION": 0,
    "WTF_CSRF_CHECK_DEFAULT": False,
    "WTF_CSRF_TIME_LIMIT": 8 * 3600,
    "MAX_CONTENT_LENGTH": 60 * 1024 * 1024,
    # Sign-in: scrypt hashes. Failures slow down the account at the address they came from, never elsewhere
    # (auth.services.sign_in_wait): 3 free, then waits of 1 s, 2 s, 4 s ... up to 15 minutes. An address that has
    # never signed in to the account also waits after 30 failures from it within 15 minutes (on any account), and
    # once 10 such addresses have failed on the account. Failures are forgotten after a day.
    "SERVICEHUB_PASSWORD_HASH": "scrypt:32768:8:1",
    "SERVICEHUB_LOGIN_FREE_FAILURES": 3,
    "SERVICEHUB_LOGIN_FIRST_WAIT_SECONDS": 1,
    "SERVICEHUB_LOGIN_MAX_WAIT_MINUTES": 15,
    "SERVICEHUB_LOGIN_MAX_FAILURES_PER_IP": 30,
    "SERVICEHUB_LOGIN_WINDOW_MINUTES": 15,
    "SERVICEHUB_LOGIN_FREE_ADDRESSES_PER_ACCOUNT": 10,
    "SERVICEHUB_LOGIN_MEMORY_HOURS": 24,
    "SERVICEHUB_TOKEN_TTL_DAYS": 30,
    # Applications: the first contact is due within the hour for an emergency, within three working days
    # otherwise; documents owed after emergency help are due in 15 days, reminded every 3 days; the public
    # form takes 5 tries per address in 10 minutes and 3 applications per phone number a day.
    "SERVICEHUB_INTAKE_EMERGENCY_HOURS": 1,
    "SERVICEHUB_INTAKE_WORKING_DAYS": 3,
    "SERVICEHUB_INTAKE_DOCUMENT_DAYS": 15,
    "SERVICEHUB_INTAKE_REMIND_DAYS": 3,
    "SERVICEHUB_INTAKE_WINDOW_MINUTES": 10,
    "SERVICEHUB_INTAKE_MAX_PER_ADDRESS": 5,
    "SERVICEHUB_INTAKE_MAX_PER_PHONE": 3,
    # Matching: hours an organisation has to answer an offer; solver time limit; score weights
    # (None: the defaults in servicehub.matching.scoring.Weights).
    "SERVICEHUB_OFFER_HOURS": 48,
    "SERVICEHUB_MATCHING_TIME_LIMIT": 60,
    "SERVICEHUB_MATCHING_WEIGHTS": None,
    # Scheduling: the rolling horizon visits are generated over; the lunch break (earliest start, latest
    # start, minutes) of anyone working across it; meals an insulated box holds; travel times from
    # coordinates (straight line x detour factor / speed of the worker's travel mode); the default search
    # time per day and how many searches run side by side; SERVICEHUB_RUN_INLINE runs solver runs in the
    # request instead of a background thread (tests, the command line).
    "SERVICEHUB_HORIZON_DAYS": 14,
    "SERVICEHUB_LUNCH_BREAK": ("11:30", "13:30", 30),
    "SERVICEHUB_MEAL_BOX_CAPACITY": 8,
    "SERVICEHUB_DETOUR_FACTOR": 1.35,
    "SERVICEHUB_TRAVEL_SPEEDS_KMH": {"walk": 4.5, "bicycle": 12.0, "ebike": 18.0, "car": 25.0},
    "SERVICEHUB_SCHEDULE_TIME_LIMIT": 8,  # a 300-visit day: 8 s of search + ~1.3 s load and store < 10 s
    "SERVICEHUB_SOLVER_PROCESSES": 1,
    "SERVICEHUB_RUN_INLINE": False,
    "SERVICEHUB_CONTINUITY_DAYS": 60,
    # Visit verification (docs/visits.md, "Exceptions"): a position farther than this from the address; an end this
    # many minutes before or after the expected end; an entry reaching the ledger this many hours after it happened;
    # a cancellation with less notice than this before the expected start; wrong confirmation codes a visit allows;
    # how far outside its day (hours) a correction may move a visit's times. The per-service-type duration shares
    # and longest stays are in the catalogue (seed_data/catalog.toml).
    "SERVICEHUB_EVV_TOLERANCE_M": 300,
    "SERVICEHUB_EVV_END_MINUTES": 30,
    "SERVICEHUB_EVV_SUBMIT_HOURS": 4,
    "SERVICEHUB_EVV_CANCEL_NOTICE_HOURS": 2,
    "SERVICEHUB_CODE_TRIES": 3,
    "SERVICEHUB_CORRECTION_MARGIN_HOURS": 2,
    # A visit not started this many minutes after its window opens is late (meal delivery: its own).
    "SERVICEHUB_LATE_MINUTES": 15,
    "SERVICEHUB_LATE_MINUTES_MEAL": 5,
    # How often the scheduler process looks for late and missed visits.
    "SERVICEHUB_DETECT_SECONDS": 120,
}
