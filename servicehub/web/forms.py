"""Web forms of the shell, and what every domain's page forms share."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import FieldList, FormField, IntegerField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from servicehub.errors import page_message


class LoginForm(FlaskForm):
    """Username and password."""

    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])


class PageForm(FlaskForm):
    """A page's form: besides field errors it carries `other_errors` for rules that span fields."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.other_errors: dict[str, list[str]] = {}


class FilterForm(FlaskForm):
    """A GET filter form of a list page (no CSRF token: it changes nothing)."""

    class Meta:
        csrf = False

    q = StringField(_l("Search"), validators=[Optional(), Length(max=50)])
    page = IntegerField(validators=[Optional(), NumberRange(min=1)], default=1)

    def value(self, name: str):
        """A filter's value, or None when it is empty or invalid."""
        field = self[name]
        return None if field.errors or field.data in ("", None) else field.data


def int_or_none(value) -> int | None:
    """A select's value as an id (None when blank): the `coerce` of id selects with an 'any' option."""
    return int(value) if value not in (None, "", "None") else None


def attach_errors(form: PageForm, errors: dict) -> None:
    """Show a service's field errors ({field: [message]}) next to the form's fields; others above the form."""
    for key, messages in errors.items():
        name = key.split(".")[0]
        field = form._fields.get(name)
        if field is not None and not isinstance(field, FieldList | FormField):
            field.errors = [*field.errors, *messages]
        else:
            form.other_errors.setdefault(name, []).extend(messages)


def known_message(message: str, known: dict, patterns=()) -> str:
    """A service's (English) message in the page's language where the page knows it: word for word from
    `known`, or through the first (compiled pattern, words(match)) of `patterns` that matches; else from the
    catalogue when the service marked it (N_), else as it is."""
    if (words := known.get(message)) is not None:
        return str(words)
    for pattern, worded in patterns:
        if matched := pattern.match(message):
            return worded(matched)
    return page_message(message)


def attach_service_errors(form: PageForm, exc, translate, rename=None) -> None:
    """Put a refused service call's field errors next to the form's fields, each message through `translate`
    and each field name through `rename` (the service's name -> the form's)."""
    attach_errors(form, {(rename(name) if rename else name): [translate(m) for m in messages]
                         for name, messages in exc.errors.items()})
