"""Flask extensions, created unbound here and bound to an app in ``create_app``."""

from __future__ import annotations

from pathlib import Path

from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from item_bank.db import Base

MIGRATIONS_DIR = str(Path(__file__).parent / "migrations")

# The domain packages declare their models on a plain SQLAlchemy base; sharing its
# metadata lets Flask-SQLAlchemy sessions and Alembic see every table.
db = SQLAlchemy(metadata=Base.metadata)
migrate = Migrate(directory=MIGRATIONS_DIR, render_as_batch=True, compare_type=True)
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
