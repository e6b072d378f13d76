"""Web forms for user management and the audit log filters."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from servicehub.auth.services import MIN_PASSWORD_LENGTH


class UserCreateForm(FlaskForm):
    """A new user (the service checks the rules; the form checks presence and length)."""

    username = StringField(_l("Username"), validators=[DataRequired(), Length(min=3, max=64)])
    display_name = StringField(_l("Name"), validators=[Optional(), Length(max=100)])
    role = SelectField(_l("Role"), validators=[DataRequired()])
    organisation_id = SelectField(_l("Organisation"), coerce=lambda v: int(v) if v else None, validate_choice=False)
    town = SelectField(_l("Town (managers only)"), validate_choice=False)
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=256)])


class AuditFilterForm(FlaskForm):
    """Filters of the audit log page (GET form, no CSRF needed)."""

    class Meta:
        csrf = False

    entity_type = StringField(_l("Entity"), validators=[Optional(), Length(max=40)])
    entity_id = StringField(_l("Id"), validators=[Optional(), Length(max=40)])
    user = StringField(_l("User"), validators=[Optional(), Length(max=100)])
    date_from = DateField(_l("From"), validators=[Optional()])
    date_to = DateField(_l("To"), validators=[Optional()])
    page = IntegerField(validators=[Optional()], default=1)
