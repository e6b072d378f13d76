"""Application endpoints: the public form and status check (no sign-in), the town work queue, steps, approval
(emergency help at once, documents later), missing documents and active discovery."""

from flask.views import MethodView
from flask_smorest import Blueprint

from servicehub.auth.access import client_ip, current_principal, public, requires
from servicehub.auth.permissions import Permission
from servicehub.intake import schemas as s
from servicehub.intake import services

blp = Blueprint("intake", __name__, url_prefix="/api/v1",
                description="Applications for help (申请救助): the public form, the town work queue with deadlines, "
                            "emergency help first and paperwork later, active discovery.")


@blp.route("/public/challenge")
class Challenge(MethodView):
    @public
    @blp.response(200, s.ChallengeSchema)
    def get(self):
        """A small sum to answer with an application (it keeps machines from flooding the form)."""
        return services.new_challenge()


@blp.route("/public/applications")
class PublicApplications(MethodView):
    @public
    @blp.arguments(s.PublicApplicationSchema)
    @blp.response(201, s.FiledSchema)
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, data):
        """Apply for help, for yourself or a family member: you get a reference to check the status with."""
        return services.submit_public(data, client_ip())


@blp.route("/public/applications/status")
class PublicStatus(MethodView):
    @public
    @blp.arguments(s.StatusCheckSchema)
    @blp.response(200, s.PublicStatusSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, data):
        """Where an application is, given its reference and the phone number it was filed with."""
        return services.check_status(data["reference"], data["phone"])


@blp.route("/applications")
class Applications(MethodView):
    @requires(Permission.APPLICATIONS_READ)
    @blp.arguments(s.ApplicationListArgs, location="query")
    @blp.response(200, s.ApplicationSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """The work queue (a town manager: the town's): open emergencies and the earliest deadlines first."""
        args.pop("lang", None)
        items, pagination_parameters.item_count = services.list_applications(
            current_principal(), **args, page=pagination_parameters.page, page_size=pagination_parameters.page_size)
        return items

    @requires(Permission.APPLICATIONS_MANAGE)
    @blp.arguments(s.StaffApplicationSchema)
    @blp.response(201, s.ApplicationDetailSchema)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data):
        """Register an application taken by phone, at the hotline, by a grid worker or at the counter."""
        return services.register_application(current_principal(), data)


@blp.route("/applications/<int:application_id>")
class ApplicationDetail(MethodView):
    @requires(Permission.APPLICATIONS_READ)
    @blp.response(200, s.ApplicationDetailSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, application_id):
        """One application with every step and its missing documents."""
        return services.get_application(current_principal(), application_id)


@blp.route("/applications/<int:application_id>/steps")
class Steps(MethodView):
    @requires(Permission.APPLICATIONS_MANAGE)
    @blp.arguments(s.StepCreateSchema)
    @blp.response(201, s.ApplicationDetailSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data, application_id):
        """Record a step (contacted, visited, verified, a note, closed) with who and when."""
        return services.record_step(current_principal(), application_id, data["kind"], data["note"])


@blp.route("/applications/<int:application_id>/reject")
class Reject(MethodView):
    @requires(Permission.APPLICATIONS_MANAGE)
    @blp.arguments(s.RejectSchema)
    @blp.response(200, s.ApplicationDetailSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data, application_id):
        """Refuse help, with the reason."""
        return services.reject(current_principal(), application_id, data["reason"])


@blp.route("/applications/<int:application_id>/approve")
class Approve(MethodView):
    @requires(Permission.APPLICATIONS_MANAGE)
    @blp.arguments(s.ApprovalSchema)
    @blp.response(200, s.ApprovalResultSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data, application_id):
        """Approve help — at once as emergency help with documents to follow (`provisional`), or after
        verification: the person is found in the registry or registered, needs start today (urgent for an
        emergency) and go to matching."""
        return services.approve(current_principal(), application_id, data)


@blp.route("/applications/<int:application_id>/documents/<int:document_id>/received")
class DocumentReceived(MethodView):
    @requires(Permission.APPLICATIONS_MANAGE)
    @blp.response(200, s.ApplicationDetailSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, application_id, document_id):
        """A missing document is in; the last one turns provisional help into approved help."""
        return services.receive_document(current_principal(), application_id, document_id)


@blp.route("/discovery/rules")
class DiscoveryRules(MethodView):
    @requires(Permission.APPLICATIONS_READ)
    @blp.response(200, s.DiscoveryRuleSchema(many=True))
    def get(self):
        """The rules of active discovery, their thresholds and whether they run."""
        return services.discovery_rules()


@blp.route("/discovery/rules/<code>")
class DiscoveryRule(MethodView):
    @requires(Permission.APPLICATIONS_MANAGE)
    @blp.arguments(s.DiscoveryRuleUpdateSchema)
    @blp.response(200, s.DiscoveryRuleSchema)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def patch(self, data, code):
        """Switch a rule on or off or change its thresholds (the district)."""
        return services.update_discovery_rule(current_principal(), code, data["enabled"], data["params"])


@blp.route("/discovery/run")
class DiscoveryRun(MethodView):
    @requires(Permission.APPLICATIONS_MANAGE)
    @blp.response(200, s.DiscoveryRunSchema)
    @blp.alt_response(403, response="FORBIDDEN")
    def post(self):
        """Run the discovery rules now (the daily job does it at 05:30)."""
        filed = services.run_discovery_as(current_principal())
        return {"filed": len(filed), "references": [a.reference for a in filed]}


@blp.route("/calendar")
class Calendar(MethodView):
    @requires(Permission.APPLICATIONS_READ)
    @blp.arguments(s.CalendarQuerySchema, location="query")
    @blp.response(200, s.CalendarDaySchema(many=True))
    def get(self, args):
        """The days of a year entered in the working calendar (holidays, weekend days worked in exchange); every
        other day is as the week makes it. Intake deadlines count working days by it."""
        return services.calendar_days(args["year"])


@blp.route("/calendar/<date:day>")
class CalendarDay(MethodView):
    @requires(Permission.APPLICATIONS_MANAGE)
    @blp.arguments(s.CalendarDaySetSchema)
    @blp.response(200, s.CalendarDaySchema)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def put(self, data, day):
        """Enter or change a day (the district): the deadlines of applications awaiting their first contact move
        with it."""
        return services.set_calendar_day(current_principal(), day, data["kind"], data["name"])

    @requires(Permission.APPLICATIONS_MANAGE)
    @blp.response(204)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, day):
        """Take a day out of the working calendar (the district); deadlines move with it."""
        services.remove_calendar_day(current_principal(), day)
