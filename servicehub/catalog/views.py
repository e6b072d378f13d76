"""The catalogue page: the 5 categories and their 21 service types."""

from flask import Blueprint, render_template
from flask_babel import lazy_gettext as _l

from servicehub.auth.access import public
from servicehub.catalog import services

blp = Blueprint("catalog_pages", __name__, template_folder="templates")

DELIVERY_LABELS = {
    "home_visit": _l("Home visit"),
    "centre": _l("At a centre"),
    "escort": _l("Escort"),
    "remote": _l("Remote"),
}
UNIT_LABELS = {"visit": _l("visit"), "hour": _l("hour"), "meal": _l("meal"), "day": _l("day")}


@blp.app_context_processor
def _catalog_labels():
    return {
        "delivery_label": lambda mode: str(DELIVERY_LABELS.get(mode, mode)),
        "unit_label": lambda unit: str(UNIT_LABELS.get(unit, unit)),
    }


@blp.get("/catalog")
@public
def index():
    """Every active service type, by category, with duration, window, qualification and price."""
    categories = services.list_categories()
    return render_template(
        "catalog/index.html", categories=categories, type_count=sum(len(c.types) for c in categories)
    )
