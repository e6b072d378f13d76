"""Service-record endpoints: check-in and check-out, outcomes, corrections, the ledger and its verification."""

from flask.views import MethodView
from flask_smorest import Blueprint

from servicehub.auth.access import current_principal, requires
from servicehub.auth.permissions import Permission
from servicehub.visits import schemas as s
from servicehub.visits import services

blp = Blueprint("visits", __name__, url_prefix="/api/v1",
                description="Service records (服务记录): visit verification, an append-only, hash-chained ledger.")


@blp.route("/visits/<int:visit_id>/check-in")
class CheckIn(MethodView):
    @requires(Permission.RECORDS_WRITE)
    @blp.arguments(s.IdempotencyHeaderSchema, location="headers", as_kwargs=True)
    @blp.arguments(s.CheckInSchema)
    @blp.response(201, s.RecordSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data, visit_id, key):
        """Arrived: where (from the phone) and when; far from the address is accepted but flagged."""
        return services.check_in(current_principal(), visit_id, key, **data)


@blp.route("/visits/<int:visit_id>/check-out")
class CheckOut(MethodView):
    @requires(Permission.RECORDS_WRITE)
    @blp.arguments(s.IdempotencyHeaderSchema, location="headers", as_kwargs=True)
    @blp.arguments(s.CheckOutSchema)
    @blp.response(201, s.RecordSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data, visit_id, key):
        """Done: the service record (tasks, the recipient's confirmation, satisfaction, notes)."""
        return services.check_out(current_principal(), visit_id, key, data)


@blp.route("/visits/<int:visit_id>/outcome")
class Outcome(MethodView):
    @requires(Permission.RECORDS_WRITE)
    @blp.arguments(s.IdempotencyHeaderSchema, location="headers", as_kwargs=True)
    @blp.arguments(s.VisitOutcomeSchema)
    @blp.response(201, s.RecordSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data, visit_id, key):
        """The visit did not happen (missed, with the reason) or was called off in advance (cancelled)."""
        return services.record_outcome(current_principal(), visit_id, key, **data)


@blp.route("/service-records")
class Records(MethodView):
    @requires(Permission.RECORDS_READ)
    @blp.arguments(s.RecordListArgs, location="query")
    @blp.response(200, s.RecordSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """Ledger entries you may see, in ledger order."""
        args.pop("lang", None)
        items, pagination_parameters.item_count = services.list_records(
            current_principal(), **args, page=pagination_parameters.page, page_size=pagination_parameters.page_size)
        return items


@blp.route("/service-records/verify")
class VerifyLedgers(MethodView):
    @requires(Permission.AUDIT_READ)
    @blp.response(200, s.LedgerCheckSchema(many=True))
    def get(self):
        """Recompute every organisation's hash chain; name the first broken link, if any."""
        return services.verify_ledgers()


@blp.route("/service-records/<int:record_id>")
class RecordDetail(MethodView):
    @requires(Permission.RECORDS_READ)
    @blp.response(200, s.RecordSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, record_id):
        """One ledger entry."""
        return services.get_record(current_principal(), record_id)


@blp.route("/service-records/<int:record_id>/corrections")
class Corrections(MethodView):
    @requires(Permission.RECORDS_WRITE)
    @blp.arguments(s.IdempotencyHeaderSchema, location="headers", as_kwargs=True)
    @blp.arguments(s.CorrectionSchema)
    @blp.response(201, s.RecordSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data, record_id, key):
        """Correct a delivery record: a new record with who and why (a caregiver's new times need approval)."""
        return services.correct(current_principal(), record_id, key, data)


@blp.route("/service-records/<int:record_id>/approve")
class Approve(MethodView):
    @requires(Permission.RECORDS_WRITE)
    @blp.arguments(s.IdempotencyHeaderSchema, location="headers", as_kwargs=True)
    @blp.response(201, s.RecordSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, record_id, key):
        """Approve a caregiver's correction of times (provider admins)."""
        return services.approve(current_principal(), record_id, key)


@blp.route("/recipients/<int:recipient_id>/confirmation-code")
class ConfirmationCode(MethodView):
    @requires(Permission.RECORDS_READ)
    @blp.response(200, s.ConfirmationCodeSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, recipient_id):
        """The 4-digit code on the recipient's service card, read out to confirm a visit."""
        return {"recipient_id": recipient_id, "code": services.confirmation_code_for(current_principal(), recipient_id)}


@blp.route("/alerts")
class Alerts(MethodView):
    @requires(Permission.ALERTS_READ)
    @blp.arguments(s.AlertListArgs, location="query")
    @blp.response(200, s.AlertSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """Your alert inbox, newest first (late and missed visits, escalations)."""
        items, pagination_parameters.item_count = services.list_alerts(
            current_principal(), open_only=args["open"], kind=args.get("kind"), page=pagination_parameters.page,
            page_size=pagination_parameters.page_size)
        return items


@blp.route("/alerts/<int:alert_id>/acknowledge")
class AcknowledgeAlert(MethodView):
    @requires(Permission.ALERTS_ACK)
    @blp.arguments(s.AcknowledgeSchema)
    @blp.response(200, s.AlertSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data, alert_id):
        """Acknowledge an alert with a note on what was done."""
        return services.acknowledge(current_principal(), alert_id, data["note"])
