"""The Flask extensions, created unbound here and bound to the app in `create_app`."""

from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from servicehub.config import PROJECT_DIR
from servicehub.database import Base
from servicehub.errors import ServiceHubApi

db = SQLAlchemy(model_class=Base)
migrate = Migrate(directory=str(PROJECT_DIR / "migrations"), render_as_batch=True, compare_type=True)
api = ServiceHubApi()
babel = Babel()
login_manager = LoginManager()
login_manager.session_protection = "basic"  # "strong" would sign caregivers out whenever their phone changes network
csrf = CSRFProtect()
