"""Web forms of the import page: the upload, and the commit of a checked file."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField, SelectField
from wtforms.validators import DataRequired, Regexp


class ImportUploadForm(FlaskForm):
    """What the file holds, and the file (checked by a dry run first)."""

    kind = SelectField(_l("What the file holds"), validators=[DataRequired()])
    file = FileField(_l("Spreadsheet (.xlsx or .csv)"), validators=[FileRequired(_l("Choose a file."))])


class ImportCommitForm(FlaskForm):
    """Commit the file checked a moment ago (kept on the server under this token)."""

    token = HiddenField(validators=[DataRequired(), Regexp(r"^[A-Za-z0-9_-]{32}$")])
