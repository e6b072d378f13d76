"""The application factory: settings, extensions, blueprints, access control, error handlers, CLI."""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import date
from importlib import import_module
from pathlib import Path

from flask import Flask, g, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter, IntegerConverter, ValidationError

from servicehub.config import (
    ENVIRONMENTS,
    STATIC_SETTINGS,
    ConfigError,
    data_key_from_instance,
    decode_data_key,
    production_problems,
    secret_key_from_instance,
    settings_from_env,
)
from servicehub.database import IMMEDIATE
from servicehub.errors import N_, DomainError, ValidationFailed
from servicehub.extensions import api, babel, csrf, db, login_manager, migrate
from servicehub.i18n import select_locale
from servicehub.validators import MAX_ID

# Every domain's models, imported so that the metadata (and Alembic) sees all tables.
MODEL_MODULES = (
    "servicehub.catalog.models",
    "servicehub.registry.models",
    "servicehub.auth.models",
    "servicehub.matching.models",
    "servicehub.scheduling.models",
    "servicehub.visits.models",
    "servicehub.jobs.models",
    "servicehub.evaluation.models",
    "servicehub.intake.models",
)

# Every flask-smorest blueprint of the /api/v1 surface, in the order they appear in the docs.
API_BLUEPRINTS = (
    "servicehub.catalog.api",
    "servicehub.auth.api",
    "servicehub.registry.api",
    "servicehub.imports.api",
    "servicehub.matching.api",
    "servicehub.scheduling.api",
    "servicehub.visits.api",
    "servicehub.evaluation.api",
    "servicehub.intake.api",
)

# Every page blueprint (a domain's views.py); the shell's own pages are registered by web.shell.
PAGE_BLUEPRINTS = (
    "servicehub.catalog.views",
    "servicehub.auth.views",
    "servicehub.registry.views",
    "servicehub.imports.views",
    "servicehub.matching.views",
    "servicehub.scheduling.views",
    "servicehub.visits.views",
    "servicehub.evaluation.views",
    "servicehub.intake.views",
    "servicehub.integrity.views",
)


def create_app(config: dict | None = None) -> Flask:
    """Build a ServiceHub app; `config` overrides the environment (tests use it)."""
    instance_path = (config or {}).get("INSTANCE_PATH") or os.environ.get("SERVICEHUB_INSTANCE_PATH")
    app = Flask(
        "servicehub",
        instance_path=instance_path,
        instance_relative_config=True,
        static_folder="web/static",
        template_folder="web/templates",
    )
    app.url_map.converters["int"] = IdConverter
    app.url_map.converters["date"] = DateConverter
    configure(app, config or {})
    register_proxies(app)
    register_request_guards(app)
    register_logging(app)
    register_extensions(app)
    register_blueprints(app)
    register_domain_links(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def register_domain_links(app: Flask) -> None:
    """Answers one domain needs from another that depends on it: which visits are in a frozen month is
    evaluation's to say, and visits asks before a correction counts."""
    from servicehub.evaluation.services import frozen_visit_ids
    from servicehub.visits.verification import set_frozen_lookup

    set_frozen_lookup(frozen_visit_ids)


def configure(app: Flask, overrides: dict) -> None:
    """Layer the settings: library defaults, then the environment, then `overrides`."""
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(STATIC_SETTINGS)
    app.config.update({k: v for k, v in settings_from_env(app.instance_path).items() if v is not None})
    app.config.update(overrides)
    if app.config["SERVICEHUB_ENV"] not in ENVIRONMENTS:
        raise ConfigError(f"SERVICEHUB_ENV={app.config['SERVICEHUB_ENV']!r}: one of {', '.join(ENVIRONMENTS)}")
    problems = production_problems(app.config, secret_given=bool(app.config.get("SECRET_KEY")),
                                   data_key_given=bool(app.config.get("SERVICEHUB_DATA_KEY")))
    app.config["SERVICEHUB_PRODUCTION_PROBLEMS"] = problems
    if app.config["SERVICEHUB_ENV"] == "production" and problems:
        raise ConfigError("Refusing to start in production:\n" + "\n".join(f"  - {p}" for p in problems))
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secret_key_from_instance(app.instance_path)
    app.config["SERVICEHUB_DATA_KEY"] = decode_data_key(
        app.config.get("SERVICEHUB_DATA_KEY") or data_key_from_instance(app.instance_path)
    )
    app.config["BABEL_DEFAULT_TIMEZONE"] = app.config["SERVICEHUB_TIMEZONE"]
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # PostgreSQL's JIT compiler spends longer compiling a report's query than running it (1.5 s of 2.3 s
        # for a district month, bench/README.md): the app's queries are too short to pay it back. A district
        # month's blocks (110,000 visits grouped by every dimension) need about 16 MB to sort: with the default
        # 4 MB of work memory the sort spilled to disk.
        options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
        options["connect_args"] = {**options.get("connect_args", {}), "options": "-c jit=off -c work_mem=32MB"}
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    app.json.ensure_ascii = False  # Chinese names readable in responses
    app.json.sort_keys = False  # fields in the order the schema declares them


class IdConverter(IntegerConverter):
    """`<int:…>` in a route: a row's id, at most MAX_ID. A larger number matches no route (404) instead of
    overflowing the database's integer (and the API documents the maximum)."""

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):
        super().__init__(map, fixed_digits, min, MAX_ID if max is None else max, signed)


class DateConverter(BaseConverter):
    """`<date:…>` in a route: a calendar day written YYYY-MM-DD; a day that does not exist matches no route (404),
    nor do 0001-01-01 and 9999-12-31, whose local midnights are out of a datetime's range in UTC (a 500 setting
    0001-01-01 as a holiday)."""

    regex = r"\d{4}-\d{2}-\d{2}"

    def to_python(self, value: str) -> date:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValidationError() from None
        if day in (date.min, date.max):
            raise ValidationError()
        return day

    def to_url(self, value) -> str:
        return value.isoformat() if isinstance(value, date) else str(value)


# Text no database stores: NUL (PostgreSQL refuses it) and unpaired UTF-16 surrogates (not Unicode at all).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable(value) -> bool:
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable(v) for v in value)
    return False


MAX_PAGE = 100_000  # past any list; larger numbers overflow the database's integers

# Arrays and objects nested deeper than any schema of the API: the parser (and every walk over the parsed body)
# recurses once per level, and a body 10,000 levels deep exhausted its recursion (a 500).
MAX_JSON_DEPTH = 32
# What the depth count looks at: an escape (a backslash and the character after it, so that \" ends no string),
# a quote, or a bracket.
_JSON_TOKEN = re.compile(r'\\.|["\[\]{}]', re.DOTALL)


def json_nesting_exceeds(body: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON text nests arrays and objects more than `limit` levels deep, counted in one pass without
    recursion and without parsing (brackets inside strings do not count)."""
    if body.count("[") + body.count("{") <= limit:
        return False
    depth, in_string = 0, False
    for token in _JSON_TOKEN.finditer(body):
        char = token.group()
        if char == '"':
            in_string = not in_string
        elif in_string or len(char) > 1:
            continue
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _json_text(data: bytes) -> str:
    # decoded as the JSON parser decodes it (UTF-8, or UTF-16/32 told by the first bytes)
    try:
        return data.decode(json.detect_encoding(data), "surrogatepass")
    except UnicodeDecodeError:
        return ""  # the parser refuses it as malformed


def register_request_guards(app: Flask) -> None:
    """Refuse what no endpoint can answer, before it reaches one: a page number past any list, a JSON body nested
    deeper than MAX_JSON_DEPTH, and text no database can store (a NUL character, an unpaired UTF-16 surrogate such
    as "\\udb39") in the query string, a form or a JSON body."""

    @app.before_request
    def _writes_take_the_write_lock_first():
        # SQLite: a request that writes takes the write lock when its transaction begins, so that two writes at
        # once queue (busy_timeout) and the second sees what the first did (a 409, not "database is locked").
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            g.immediate_token = IMMEDIATE.set(True)

    @app.before_request
    def _api_reads_without_a_transaction():
        # PostgreSQL: an API read runs each statement on its own (autocommit), which saves the BEGIN and the
        # ROLLBACK round trips of a transaction that writes nothing: a phone's roster is the busiest request there
        # is (bench/README.md, "Load"). Each statement still reads one consistent snapshot, as under READ COMMITTED
        # in a transaction; an API GET writes at most one row in one statement (a token's last use).
        if request.method in ("GET", "HEAD") and request.path.startswith("/api/") \
                and db.engine.dialect.name == "postgresql":
            db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})

    @app.teardown_request
    def _release_immediate(_exc):
        token = g.pop("immediate_token", None)
        if token is not None:
            IMMEDIATE.reset(token)

    @app.before_request
    def _page_in_range():
        page = request.args.get("page", "")
        if page.isdigit() and int(page) > MAX_PAGE:
            raise ValidationFailed(N_("The page is past any list."), {"page": [f"At most {MAX_PAGE}."]})

    @app.before_request
    def _json_nesting_in_range():
        # before anything parses the body (the next guard does)
        if request.is_json and json_nesting_exceeds(_json_text(request.get_data(cache=True))):
            raise DomainError(
                N_("The JSON body is nested more than %(limit)s levels deep.", limit=MAX_JSON_DEPTH),
                {"body": [f"At most {MAX_JSON_DEPTH} levels of arrays and objects."]},
                code="too_deeply_nested",
            )

    @app.before_request
    def _text_is_storable():
        sent = [dict(request.args.lists())]
        if request.is_json:
            sent.append(request.get_json(silent=True))
        elif request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            sent.append(dict(request.form.lists()))
        if _unstorable(sent):
            raise DomainError("The request holds text that cannot be stored (a NUL character or an unpaired "
                              "surrogate).", code="invalid_text")


def register_proxies(app: Flask) -> None:
    """Trust X-Forwarded-For/-Proto from SERVICEHUB_PROXIES reverse proxies (none by default)."""
    hops = app.config.get("SERVICEHUB_PROXIES") or 0
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def register_logging(app: Flask) -> None:
    """Log to stderr at INFO outside tests."""
    if not app.testing:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def register_extensions(app: Flask) -> None:
    """Bind the database, migrations, translations, sign-in, CSRF and the API to the app."""
    for module_name in MODEL_MODULES:
        import_module(module_name)
    db.init_app(app)
    migrate.init_app(app, db)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=lambda: app.config["SERVICEHUB_TIMEZONE"])
    login_manager.init_app(app)
    csrf.init_app(app)
    api.init_app(app)
    api.register_converter(DateConverter, lambda _converter: {"type": "string", "format": "date"})


def register_blueprints(app: Flask) -> None:
    """Register access control, the API, the pages, the health check and the docs page."""
    from servicehub import apidocs, health
    from servicehub.auth.access import register_access
    from servicehub.web.shell import register_web

    register_access(app)
    for module_name in API_BLUEPRINTS:
        api.register_blueprint(import_module(module_name).blp)
    register_web(app)
    for module_name in PAGE_BLUEPRINTS:
        app.register_blueprint(import_module(module_name).blp)
    app.register_blueprint(health.blp)
    app.register_blueprint(apidocs.blp)


def register_error_handlers(app: Flask) -> None:
    """One error format for the whole app (see servicehub.errors)."""
    from servicehub.errors import register_error_handlers as register

    register(app)


def register_commands(app: Flask) -> None:
    """Add the `servicehub` command groups (db comes from Flask-Migrate)."""
    from servicehub.cli import register_cli

    register_cli(app)
