"""Catalogue endpoints under /api/v1/catalog (public: the service list is public information)."""

from flask.views import MethodView
from flask_smorest import Blueprint

from servicehub.auth.access import declare_blueprint
from servicehub.auth.permissions import Permission
from servicehub.catalog import services
from servicehub.catalog.schemas import (
    AssistanceClassSchema,
    CategoryListArgsSchema,
    CategorySchema,
    QualificationSchema,
    ServiceTypeListArgsSchema,
    ServiceTypeSchema,
)
from servicehub.i18n import LanguageArgsSchema

blp = Blueprint(
    "catalog",
    __name__,
    url_prefix="/api/v1/catalog",
    description="The service catalogue (服务清单): 5 categories, 21 service types. Public, read-only.",
)
declare_blueprint(blp, Permission.PUBLIC)  # the service list is public information


@blp.route("/categories")
class CategoryList(MethodView):
    @blp.arguments(CategoryListArgsSchema, location="query")
    @blp.response(200, CategorySchema(many=True))
    def get(self, args):
        """List the categories in catalogue order, each with its service types."""
        return services.list_categories(include_inactive=args["include_inactive"])


@blp.route("/service-types")
class ServiceTypeList(MethodView):
    @blp.arguments(ServiceTypeListArgsSchema, location="query")
    @blp.response(200, ServiceTypeSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List service types, filtered by category, delivery mode or required qualification."""
        args.pop("lang", None)
        items, total = services.list_service_types(
            **args, page=pagination_parameters.page, page_size=pagination_parameters.page_size
        )
        pagination_parameters.item_count = total
        return items


@blp.route("/service-types/<code>")
class ServiceTypeDetail(MethodView):
    @blp.arguments(LanguageArgsSchema, location="query")
    @blp.response(200, ServiceTypeSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, _args, code):
        """One service type by its code, active or retired."""
        return services.get_service_type(code)


@blp.route("/qualifications")
class QualificationList(MethodView):
    @blp.arguments(LanguageArgsSchema, location="query")
    @blp.response(200, QualificationSchema(many=True))
    def get(self, _args):
        """List the qualifications service types may require."""
        return services.list_qualifications()


@blp.route("/assistance-classes")
class AssistanceClassList(MethodView):
    @blp.arguments(LanguageArgsSchema, location="query")
    @blp.response(200, AssistanceClassSchema(many=True))
    def get(self, _args):
        """List the assistance classes (低保, 特困 …) and the service categories each may receive."""
        return services.list_assistance_classes()
