"""The Flask extensions, created unbound here and bound to the app in `create_app`."""

from flask_babel import Babel
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from servicehub.config import PROJECT_DIR
from servicehub.database import Base
from servicehub.errors import ServiceHubApi

db = SQLAlchemy(model_class=Base)
migrate = Migrate(directory=str(PROJECT_DIR / "migrations"), render_as_batch=True, compare_type=True)
api = ServiceHubApi()
babel = Babel()
