"""The interactive API documentation page, served with its assets from the package (works offline)."""

from flask import Blueprint, render_template, send_from_directory, url_for
from swagger_ui_bundle import swagger_ui_path

from servicehub.auth.access import public

blp = Blueprint("apidocs", __name__, url_prefix="/api/v1/docs")


@blp.get("")
@blp.get("/")
@public
def docs_page():
    """Swagger UI for /api/v1/openapi.json."""
    return render_template("apidocs/swagger.html", spec_url=url_for("api-docs.openapi_json"))


@blp.get("/assets/<path:filename>")
@public
def docs_asset(filename: str):
    """Swagger UI's own files, from the swagger-ui-bundle package."""
    return send_from_directory(str(swagger_ui_path), filename, max_age=86400)
