"""Language selection (Chinese first, English available) and localized schema fields."""

from __future__ import annotations

import marshmallow as ma
from flask import current_app, has_request_context, request, session
from flask_babel import get_locale

from servicehub.config import LANGUAGES


def supported_languages() -> tuple[str, ...]:
    """The languages the product speaks, default first."""
    return tuple(current_app.config["SERVICEHUB_LANGUAGES"])


def select_locale() -> str:
    """Pick the language: `?lang=`, then the session's choice; then, for the API only, Accept-Language.

    Pages are Chinese first whatever the browser says; the language switch (kept in the session)
    turns them English.
    """
    languages = supported_languages()
    if not has_request_context():
        return languages[0]
    asked = request.args.get("lang")
    if asked in languages:
        return asked
    chosen = session.get("lang")
    if chosen in languages:
        return chosen
    if request.path.startswith("/api/"):
        return request.accept_languages.best_match(languages) or languages[0]
    return languages[0]


def localized(obj, base: str) -> str | None:
    """`obj.<base>_<lang>` in the request's language, falling back to Chinese."""
    value = getattr(obj, f"{base}_{current_language()}", None)
    return value if value else getattr(obj, f"{base}_zh", None)


def current_language() -> str:
    """The language of the current request ('zh' or 'en')."""
    locale = get_locale()
    return locale.language if locale is not None else supported_languages()[0]


class Localized(ma.fields.String):
    """Dumps `<base>_<lang>` of the object in the request's language (falls back to Chinese)."""

    def __init__(self, base: str, **kwargs):
        kwargs.setdefault("dump_only", True)
        super().__init__(**kwargs)
        self.base = base

    def get_value(self, obj, attr, accessor=None, default=ma.missing):
        """Read the attribute for the current language instead of `attr`."""
        if self.attribute:  # e.g. attribute="category": the category's name, not the type's
            for part in self.attribute.split("."):
                obj = getattr(obj, part)
        return localized(obj, self.base)


class LanguageArgsSchema(ma.Schema):
    """The `lang` query parameter every localized endpoint accepts."""

    lang = ma.fields.String(
        validate=ma.validate.OneOf(LANGUAGES),
        metadata={"description": "Language of names: zh (default) or en. Overrides Accept-Language."},
    )


class AllLanguages(ma.fields.Dict):
    """Dumps `{"zh": <base>_zh, "en": <base>_en}` so clients can show both names."""

    def __init__(self, base: str, **kwargs):
        kwargs.setdefault("dump_only", True)
        super().__init__(keys=ma.fields.String(), values=ma.fields.String(), **kwargs)
        self.base = base

    def get_value(self, obj, attr, accessor=None, default=ma.missing):
        """Collect the attribute in every language."""
        return {lang: getattr(obj, f"{self.base}_{lang}", None) for lang in LANGUAGES}
