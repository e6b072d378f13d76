"""The uniform part of a REST resource: list / create on the collection, get / update on an item.

Each resource is declared once (`Resource`): its schemas, the permissions to read and to write, and
the service functions. The views only parse, call the one service function and dump; every service
function takes the caller's Principal first, so scoping is never the view's business.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask.views import MethodView
from flask_smorest import Blueprint

from servicehub.auth.access import current_principal, requires
from servicehub.auth.permissions import Permission


@dataclass(frozen=True)
class Resource:
    """A collection at `path` and its items at `path/<int:id>`."""

    name: str  # singular, for endpoints and docs: "station"
    path: str  # "/stations"
    schema: type
    create_schema: type
    update_schema: type
    list_args: type
    read: Permission
    write: Permission
    list: Callable
    get: Callable
    create: Callable
    update: Callable


def register_resource(blp: Blueprint, res: Resource) -> None:
    """Add the list, create, get and update endpoints of `res` to `blp`."""
    label = res.name.replace("_", " ")

    def list_items(self, args, pagination_parameters):
        args.pop("lang", None)
        items, pagination_parameters.item_count = res.list(
            current_principal(), **args, page=pagination_parameters.page, page_size=pagination_parameters.page_size
        )
        return items

    def create_item(self, data):
        return res.create(current_principal(), data)

    def get_item(self, item_id):
        return res.get(current_principal(), item_id)

    def update_item(self, data, item_id):
        return res.update(current_principal(), item_id, data)

    list_items.__doc__ = f"List {label}s you may see (filtered, sorted, paginated)."
    create_item.__doc__ = f"Create a {label}."
    get_item.__doc__ = f"One {label}."
    update_item.__doc__ = f"Change a {label}; only the fields given change. Nothing is deleted: deactivate instead."

    collection = type(
        f"{res.name.title().replace('_', '')}List",
        (MethodView,),
        {
            "get": requires(res.read)(
                blp.arguments(res.list_args, location="query")(
                    blp.response(200, res.schema(many=True))(blp.paginate()(list_items))
                )
            ),
            "post": requires(res.write)(
                blp.arguments(res.create_schema)(
                    blp.response(201, res.schema)(blp.alt_response(409, response="CONFLICT")(create_item))
                )
            ),
        },
    )
    item = type(
        f"{res.name.title().replace('_', '')}Detail",
        (MethodView,),
        {
            "get": requires(res.read)(blp.response(200, res.schema)(blp.alt_response(404, response="NOT_FOUND")(get_item))),
            "patch": requires(res.write)(
                blp.arguments(res.update_schema)(
                    blp.response(200, res.schema)(blp.alt_response(404, response="NOT_FOUND")(update_item))
                )
            ),
        },
    )
    blp.route(res.path)(collection)
    blp.route(f"{res.path}/<int:item_id>")(item)
