"""Service-record endpoints: check-in and check-out, outcomes, corrections, the ledger and its verification."""

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from servicehub.apidocs import file_response
from servicehub.auth.access import current_principal, requires
from servicehub.auth.permissions import Permission
from servicehub.i18n import LanguageArgsSchema
from servicehub.visits import queue, services
from servicehub.visits import schemas as s

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


@blp.route("/recipients/<int:recipient_id>/confirmation-cards")
class ConfirmationCards(MethodView):
    @requires(Permission.CARDS_ISSUE)
    @blp.arguments(LanguageArgsSchema, location="query")
    @blp.response(200, s.CardSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, _args, recipient_id):
        """The recipient's confirmation cards, newest first: issued when and by whom, how many printed codes are
        used (never a secret or a code)."""
        return services.list_cards(current_principal(), recipient_id)

    @requires(Permission.CARDS_ISSUE)
    @blp.response(201)
    @file_response("The new card to print (PDF): a QR code for a family member's phone and the numbered one-time "
                   "codes", ["application/pdf"], status=201)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, recipient_id):
        """Print a new confirmation card: the old one stops working at once. Its codes are in this PDF only;
        audited, and a card a provider replaces is reported to the managers."""
        card, pdf = services.issue_card(current_principal(), recipient_id)
        return Response(pdf, status=201, mimetype="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="card-{recipient_id}-{card.card_no}.pdf"'})


# --- the exception queue -------------------------------------------------------------------------------------------


def _filters(args: dict) -> dict:
    args.pop("lang", None)
    return args


@blp.route("/evv-exceptions")
class Exceptions(MethodView):
    @requires(Permission.EXCEPTIONS_READ)
    @blp.arguments(s.ExceptionListArgs, location="query")
    @blp.response(200, s.EvvExceptionSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """The exception queue you may see (a provider: its own; a town manager: the town's), the oldest visit
        first; by default the undecided ones."""
        items, pagination_parameters.item_count = queue.list_exceptions(
            current_principal(), **_filters(args), page=pagination_parameters.page,
            page_size=pagination_parameters.page_size)
        return items


@blp.route("/evv-exceptions/counts")
class ExceptionCounts(MethodView):
    @requires(Permission.EXCEPTIONS_READ)
    @blp.arguments(s.ExceptionCountArgs, location="query")
    @blp.response(200, s.ExceptionCountsSchema, description="{code: {status: count}}")
    def get(self, args):
        """How many exceptions of each code, by status, under the same filters as the queue."""
        return queue.counts_by_code(current_principal(), **_filters(args))


@blp.route("/evv-exceptions/<int:exception_id>")
class ExceptionDetail(MethodView):
    @requires(Permission.EXCEPTIONS_READ)
    @blp.response(200, s.EvvExceptionDetailSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, exception_id):
        """One exception with its history (raised, explained, decided, cleared, reopened)."""
        return queue.get_exception(current_principal(), exception_id)


@blp.route("/evv-exceptions/<int:exception_id>/resolve")
class ResolveException(MethodView):
    @requires(Permission.EXCEPTIONS_RESOLVE)
    @blp.arguments(s.ResolveSchema)
    @blp.response(200, s.EvvExceptionSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data, exception_id):
        """The provider explains an exception with a reason code and a note; it then waits for the bureau."""
        return queue.resolve(current_principal(), exception_id, data["reason_code"], data["note"])


# Deciding is declared open to every reader of the queue so that the service answers who may not decide with its
# rule (an organisation never decides its own: 403 `not_the_bureau`), not with the bare permission.
@blp.route("/evv-exceptions/<int:exception_id>/decide")
class DecideException(MethodView):
    @requires(Permission.EXCEPTIONS_READ)
    @blp.arguments(s.DecideSchema)
    @blp.response(200, s.EvvExceptionSchema)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data, exception_id):
        """The bureau approves an explained exception or rejects it (with a note); a visit is paid once each of
        its exceptions is approved."""
        return queue.decide(current_principal(), exception_id, data["decision"] == "approve", data["note"])


@blp.route("/evv-exceptions/resolve")
class ResolveExceptions(MethodView):
    @requires(Permission.EXCEPTIONS_RESOLVE)
    @blp.arguments(s.ResolveManySchema)
    @blp.response(200, s.EvvExceptionSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data):
        """The same explanation for several exceptions: all of them, or none."""
        return queue.resolve_many(current_principal(), data["ids"], data["reason_code"], data["note"])


@blp.route("/evv-exceptions/decide")
class DecideExceptions(MethodView):
    @requires(Permission.EXCEPTIONS_READ)
    @blp.arguments(s.DecideManySchema)
    @blp.response(200, s.EvvExceptionSchema(many=True))
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data):
        """The same decision for several explained exceptions: all of them, or none."""
        return queue.decide_many(current_principal(), data["ids"], data["decision"] == "approve", data["note"])


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
