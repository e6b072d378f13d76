"""Scheduling endpoints: visit generation and exceptions, solver runs and publication, rosters, moves, absences."""

from flask.views import MethodView
from flask_smorest import Blueprint

from servicehub.auth.access import current_principal, requires
from servicehub.auth.permissions import Permission
from servicehub.scheduling import schemas as s
from servicehub.scheduling import services

blp = Blueprint("scheduling", __name__, url_prefix="/api/v1",
                description="Scheduling (排班): visits from active referrals, OR-Tools rosters, re-planning.")


@blp.route("/visits")
class Visits(MethodView):
    @requires(Permission.ROSTERS_READ)
    @blp.arguments(s.VisitListArgs, location="query")
    @blp.response(200, s.VisitSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """Visits you may see (a provider: its own; a caregiver: their own today), filtered."""
        args.pop("lang", None)
        items, pagination_parameters.item_count = services.list_visits(
            current_principal(), **args, page=pagination_parameters.page, page_size=pagination_parameters.page_size)
        return items


@blp.route("/visits/generate")
class GenerateVisits(MethodView):
    @requires(Permission.SCHEDULE_MANAGE)
    @blp.arguments(s.GenerateSchema)
    @blp.response(200, s.GenerationReportSchema)
    def post(self, data):
        """Expand accepted and active referrals into visits over the rolling horizon (idempotent)."""
        return services.generate_visits(current_principal(), **data)


@blp.route("/visits/<int:visit_id>")
class VisitDetail(MethodView):
    @requires(Permission.ROSTERS_READ)
    @blp.response(200, s.VisitSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, visit_id):
        """One visit."""
        return services.get_visit(current_principal(), visit_id)


@blp.route("/visits/<int:visit_id>/move")
class MoveVisit(MethodView):
    @requires(Permission.SCHEDULE_MANAGE)
    @blp.arguments(s.MoveSchema)
    @blp.response(200, s.VisitSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data, visit_id):
        """Move a visit to a worker; refused with the rule it would break (`code`), otherwise locked there."""
        return services.move_visit(current_principal(), visit_id, data["worker_id"], data["start"])


@blp.route("/visit-exceptions")
class VisitExceptions(MethodView):
    @requires(Permission.SCHEDULE_READ)
    @blp.arguments(s.LanguageArgsSchema, location="query")
    @blp.response(200, s.ExceptionSchema(many=True))
    @blp.paginate()
    def get(self, _args, pagination_parameters):
        """Days without visits you may see: holidays, and your recipients' absences."""
        items, pagination_parameters.item_count = services.list_exceptions(
            current_principal(), page=pagination_parameters.page, page_size=pagination_parameters.page_size)
        return items

    @requires(Permission.SCHEDULE_MANAGE)
    @blp.arguments(s.ExceptionCreateSchema)
    @blp.response(201, s.ExceptionSchema)
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data):
        """Declare days without visits; planned visits on them are cancelled (published ones are left to you)."""
        return services.add_exception(current_principal(), data)


@blp.route("/schedule-runs")
class ScheduleRuns(MethodView):
    @requires(Permission.SCHEDULE_READ)
    @blp.arguments(s.RunListArgs, location="query")
    @blp.response(200, s.RunSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """Recent solver runs, newest first."""
        args.pop("lang", None)
        items, pagination_parameters.item_count = services.list_runs(
            current_principal(), **args, page=pagination_parameters.page, page_size=pagination_parameters.page_size)
        return items

    @requires(Permission.SCHEDULE_MANAGE)
    @blp.arguments(s.RunCreateSchema)
    @blp.response(202, s.RunSchema)
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data):
        """Start planning an organisation's day(s) in the background; poll the run it returns."""
        return services.start_run(current_principal(), **data)


@blp.route("/schedule-runs/<int:run_id>")
class ScheduleRunDetail(MethodView):
    @requires(Permission.SCHEDULE_READ)
    @blp.response(200, s.RunSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, run_id):
        """A run's status, progress, objective, placed and unplaced counts (and a re-plan's changes)."""
        return services.get_run(current_principal(), run_id)


@blp.route("/schedule-runs/<int:run_id>/plan")
class ScheduleRunPlan(MethodView):
    @requires(Permission.SCHEDULE_READ)
    @blp.response(200, s.PlanDaySchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, run_id):
        """The plan a run found: every visit's worker and times, or why it could not be placed."""
        return services.run_plan(current_principal(), run_id)


@blp.route("/schedule-runs/<int:run_id>/publish")
class PublishRun(MethodView):
    @requires(Permission.SCHEDULE_MANAGE)
    @blp.response(200, s.RosterVersionSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, run_id):
        """Publish a solved run: all its visits in one transaction, a new roster version per day."""
        return services.publish_run(current_principal(), run_id)


@blp.route("/roster-versions")
class RosterVersions(MethodView):
    @requires(Permission.SCHEDULE_MANAGE)
    @blp.arguments(s.RosterVersionArgs, location="query")
    @blp.response(200, s.RosterVersionSchema(many=True))
    def get(self, args):
        """Every published version of an organisation's day, newest first."""
        return services.roster_versions(current_principal(), args["organisation_id"], args["service_date"])


@blp.route("/rosters")
class Rosters(MethodView):
    @requires(Permission.ROSTERS_READ)
    @blp.arguments(s.RosterArgs, location="query")
    @blp.response(200, s.RosterSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args):
        """A worker's published day in route order: planned arrival, travel minutes, addresses."""
        principal = current_principal()
        worker, visits = services.roster(principal, args["service_date"], args["worker_id"])
        return services.present_roster(principal, worker, args["service_date"], visits)


@blp.route("/workers/<int:worker_id>/absences")
class WorkerAbsences(MethodView):
    @requires(Permission.SCHEDULE_MANAGE)
    @blp.arguments(s.AbsenceCreateSchema)
    @blp.response(201, s.AbsenceResultSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data, worker_id):
        """A worker is out from a time of day: record it and re-plan the rest of the day (a run to publish)."""
        absence, run = services.report_absence(current_principal(), worker_id, data["date"], data["from_time"],
                                               data["reason"], data["replan"], data["time_limit_s"])
        return {"absence_id": absence.id, "worker_id": worker_id, "date": absence.absence_date, "run": run}


@blp.route("/organisations/<int:organisation_id>/replan-from-now")
class ReplanFromNow(MethodView):
    @requires(Permission.SCHEDULE_MANAGE)
    @blp.arguments(s.ReplanFromNowSchema)
    @blp.response(202, s.RunSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data, organisation_id):
        """Re-plan the organisation's today from now (done and started visits stay); poll the run, then publish."""
        return services.replan_from_now(current_principal(), organisation_id, data["time_limit_s"])


@blp.route("/organisations/<int:organisation_id>/schedule-settings")
class Settings(MethodView):
    @requires(Permission.SCHEDULE_READ)
    @blp.response(200, s.ScheduleSettingsSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, organisation_id):
        """Whether the organisation's next day is planned every night."""
        return services.get_settings(current_principal(), organisation_id)

    @requires(Permission.SCHEDULE_MANAGE)
    @blp.arguments(s.ScheduleSettingsSchema)
    @blp.response(200, s.ScheduleSettingsSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def put(self, data, organisation_id):
        """Opt in or out of the nightly plan of the next day."""
        return services.update_settings(current_principal(), organisation_id, data)
