"""Matching endpoints: runs, the unmet-needs queue and the referral lifecycle."""

from flask.views import MethodView
from flask_smorest import Blueprint

from servicehub.auth.access import current_principal, requires
from servicehub.auth.permissions import Permission
from servicehub.matching import schemas as s
from servicehub.matching import services

blp = Blueprint("matching", __name__, url_prefix="/api/v1",
                description="Matching (供需对接): needs to contracted organisations, and referrals (派单).")

FIRST_OUTCOMES = 100


@blp.route("/matching/runs")
class MatchingRuns(MethodView):
    @requires(Permission.MATCHING_RUN)
    @blp.arguments(s.MatchingRunCreateSchema)
    @blp.response(201, s.MatchingRunResultSchema)
    def post(self, data):
        """Propose organisations for every open need in scope at once (all you may see, a town, or listed needs)."""
        run = services.run_matching(current_principal(), **data)
        run.outcomes, _ = services.run_outcomes(current_principal(), run.id, page=1, page_size=FIRST_OUTCOMES)
        return run


@blp.route("/matching/runs/<int:run_id>")
class MatchingRunDetail(MethodView):
    @requires(Permission.MATCHING_RUN)
    @blp.response(200, s.MatchingRunSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, run_id):
        """One matching run's summary."""
        return services.get_run(current_principal(), run_id)


@blp.route("/matching/runs/<int:run_id>/outcomes")
class MatchingRunOutcomes(MethodView):
    @requires(Permission.MATCHING_RUN)
    @blp.arguments(s.OutcomeListArgs, location="query")
    @blp.response(200, s.OutcomeSchema(many=True))
    @blp.paginate()
    def get(self, args, run_id, pagination_parameters):
        """What a run decided for each need: proposal, alternatives, organisations ruled out and why."""
        items, pagination_parameters.item_count = services.run_outcomes(
            current_principal(), run_id, result=args.get("result"), page=pagination_parameters.page,
            page_size=pagination_parameters.page_size,
        )
        return items


@blp.route("/matching/unmet-needs")
class UnmetNeeds(MethodView):
    @requires(Permission.MATCHING_RUN)
    @blp.arguments(s.UnmetNeedArgs, location="query")
    @blp.response(200, s.UnmetNeedSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """Open needs, urgent first, with their current proposal and latest outcome."""
        args.pop("lang", None)
        items, pagination_parameters.item_count = services.unmet_needs(
            current_principal(), **args, page=pagination_parameters.page, page_size=pagination_parameters.page_size
        )
        return items


@blp.route("/referrals")
class Referrals(MethodView):
    @requires(Permission.REFERRALS_READ)
    @blp.arguments(s.ReferralListArgs, location="query")
    @blp.response(200, s.ReferralSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """Referrals you may see (a provider: those offered to it), filtered."""
        args.pop("lang", None)
        items, pagination_parameters.item_count = services.list_referrals(
            current_principal(), **args, page=pagination_parameters.page, page_size=pagination_parameters.page_size
        )
        return items

    @requires(Permission.MATCHING_RUN)
    @blp.arguments(s.ReferralCreateSchema)
    @blp.response(201, s.ReferralSchema)
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data):
        """Propose your own choice of contract line for a need (locked); refused with the rule it breaks."""
        return services.propose(current_principal(), data["need_id"], data["contract_line_id"])


@blp.route("/referrals/accept")
class BulkAccept(MethodView):
    @requires(Permission.REFERRALS_RESPOND)
    @blp.arguments(s.BulkOfferSchema)
    @blp.response(200, s.ReferralSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data):
        """Accept several offers made to your organisation at once: all or none (the first refusal names its
        referral)."""
        return services.act_many(current_principal(), data["referral_ids"], "accept")


@blp.route("/referrals/offer")
class BulkOffer(MethodView):
    @requires(Permission.MATCHING_RUN)
    @blp.arguments(s.BulkOfferSchema)
    @blp.response(200, s.ReferralSchema(many=True))
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data):
        """Offer several proposals at once: all or none."""
        return services.offer_many(current_principal(), data["referral_ids"])


@blp.route("/referrals/<int:referral_id>")
class ReferralDetail(MethodView):
    @requires(Permission.REFERRALS_READ)
    @blp.response(200, s.ReferralSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, referral_id):
        """One referral."""
        return services.get_referral(current_principal(), referral_id)


def _action_view(action: str, permission: Permission, doc: str):
    """A POST /referrals/<id>/<action> endpoint taking an optional reason."""

    @requires(permission)
    @blp.arguments(s.ReasonSchema)
    @blp.response(200, s.ReferralSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data, referral_id):
        return services.act(current_principal(), referral_id, action, reason=data["reason"])

    post.__doc__ = doc
    blp.route(f"/referrals/<int:referral_id>/{action}")(type(f"Referral{action.title()}", (MethodView,), {"post": post}))


for _action, _permission, _doc in (
    ("offer", Permission.MATCHING_RUN, "Send a proposal to its organisation (answer due within 48 h)."),
    ("withdraw", Permission.MATCHING_RUN, "Withdraw a proposal or an unanswered offer (reason required)."),
    ("accept", Permission.REFERRALS_RESPOND, "Accept an offer made to your organisation."),
    ("decline", Permission.REFERRALS_RESPOND, "Decline an offer made to your organisation (reason required)."),
    ("suspend", Permission.REFERRALS_SERVE, "Pause a referral (reason required)."),
    ("resume", Permission.REFERRALS_SERVE, "Resume a suspended referral."),
    ("close", Permission.REFERRALS_SERVE, "End a referral (reason required)."),
):
    _action_view(_action, _permission, _doc)


@blp.route("/referrals/<int:referral_id>/lock")
class ReferralLock(MethodView):
    @requires(Permission.MATCHING_RUN)
    @blp.response(200, s.ReferralSchema)
    def post(self, referral_id):
        """Lock a proposal: the next matching run keeps it."""
        return services.set_locked(current_principal(), referral_id, True)

    @requires(Permission.MATCHING_RUN)
    @blp.response(200, s.ReferralSchema)
    def delete(self, referral_id):
        """Unlock a proposal."""
        return services.set_locked(current_principal(), referral_id, False)


@blp.route("/referrals/<int:referral_id>/reoffer")
class ReferralReoffer(MethodView):
    @requires(Permission.MATCHING_RUN)
    @blp.response(200, s.ReferralSchema)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, referral_id):
        """Withdraw an offer left unanswered past its deadline and offer the need to the next-best organisation."""
        return services.reoffer(current_principal(), referral_id)
