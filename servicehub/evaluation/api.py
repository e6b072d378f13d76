"""Evaluation endpoints: KPI reports and their downloads, drill-down to records, frozen monthly reports, scores."""

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from servicehub.apidocs import file_response
from servicehub.auth.access import current_principal, requires
from servicehub.auth.permissions import Permission
from servicehub.evaluation import exports, services
from servicehub.evaluation import schemas as s

blp = Blueprint("evaluation", __name__, url_prefix="/api/v1",
                description="Performance evaluation (效能评估): KPIs, auditor reports, frozen monthly reports.")

def _query(args: dict) -> dict:
    args.pop("lang", None)
    return {"first": args.pop("first"), "last": args.pop("last"), **args}


def _file(content: bytes, fmt: str, filename: str) -> Response:
    return Response(content, mimetype=exports.MIMETYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{filename}.{fmt}"'})


@blp.route("/reports/kpis")
class Kpis(MethodView):
    @requires(Permission.REPORTS_READ)
    @blp.arguments(s.ReportArgs, location="query")
    @blp.response(200, s.ReportSchema)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args):
        """KPIs of a period, grouped by any of organisation, contract, service type, category, town, recipient
        class, worker, recipient and one of day, week, month, quarter, year; a period without records gives
        zeros."""
        return services.kpi_report(current_principal(), **_query(args))


@blp.route("/reports/kpis/export")
class KpiExport(MethodView):
    @requires(Permission.REPORTS_READ)
    @blp.arguments(s.ExportArgs, location="query")
    @blp.response(200)
    @file_response("The report as CSV, XLSX or PDF", exports.MIMETYPES.values())
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args):
        """The report as a file: CSV (the groups), XLSX (summary, by organisation, by service type, by town, raw
        records, definitions) or PDF (cover, charts, tables, definitions)."""
        fmt = args.pop("format")
        content, filename = exports.export_report(current_principal(), fmt, **_query(args))
        return _file(content, fmt, filename)


@blp.route("/reports/records")
class DrillDown(MethodView):
    @requires(Permission.REPORTS_READ)
    @blp.arguments(s.DrillDownArgs, location="query")
    @blp.response(200, s.DrillDownSchema)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args):
        """The visits behind a group's figures (its key given as filters), each with what it adds; the sums
        equal the group's figures."""
        granularity, bucket = args.pop("granularity"), args.pop("bucket")
        key = {**({granularity: bucket} if granularity else {}), **dict.fromkeys(args.pop("unassigned"))}
        return services.drill_down(current_principal(), key=key, **_query(args))


@blp.route("/reports/definitions")
class Definitions(MethodView):
    @requires(Permission.REPORTS_READ)
    @blp.response(200, s.DefinitionSchema(many=True))
    def get(self):
        """What every figure means, word for word as the reports print it."""
        return services.definitions()


@blp.route("/reports/frozen")
class FrozenReports(MethodView):
    @requires(Permission.REPORTS_READ)
    @blp.arguments(s.FrozenListArgs, location="query")
    @blp.response(200, s.FrozenSummarySchema(many=True))
    def get(self, args):
        """Frozen monthly reports you may see, newest month first."""
        args.pop("lang", None)
        return services.list_frozen(current_principal(), **args)

    @requires(Permission.REPORTS_FREEZE)
    @blp.arguments(s.FreezeSchema)
    @blp.response(201, s.FrozenSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data):
        """Freeze a contract's report and settlement of a month that is over (the monthly job does this on the
        1st). While any exception of the month is undecided it is refused (409 `open_exceptions`) unless
        `accept_open_exceptions` says to freeze it with them listed."""
        return services.freeze_contract_month(current_principal(), data["contract_id"], data["month"],
                                              accept_open_exceptions=data["accept_open_exceptions"])


@blp.route("/reports/frozen/<int:frozen_id>")
class FrozenReport(MethodView):
    @requires(Permission.REPORTS_READ)
    @blp.response(200, s.FrozenSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, frozen_id):
        """A frozen report as it was issued."""
        return services.get_frozen(current_principal(), frozen_id)


@blp.route("/reports/frozen/<int:frozen_id>/differences")
class FrozenDifferences(MethodView):
    @requires(Permission.REPORTS_READ)
    @blp.response(200, s.ComparisonSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, frozen_id):
        """Regenerate the frozen report's period from today's data: what changed since (late corrections),
        record by record and figure by figure. The frozen report stays as it was."""
        return services.compare_frozen(current_principal(), frozen_id)


@blp.route("/reports/frozen/<int:frozen_id>/export")
class FrozenExport(MethodView):
    @requires(Permission.REPORTS_READ)
    @blp.arguments(s.FrozenFormatArgs, location="query")
    @blp.response(200)
    @file_response("The frozen report as CSV, XLSX or PDF", exports.MIMETYPES.values())
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args, frozen_id):
        """The frozen report as a file, from what was stored when it was issued."""
        content, filename = exports.export_frozen(current_principal(), frozen_id, args["format"])
        return _file(content, args["format"], filename)


@blp.route("/contracts/<int:contract_id>/settlement")
class Settlement(MethodView):
    @requires(Permission.REPORTS_READ)
    @blp.arguments(s.SettlementArgs, location="query")
    @blp.response(200, s.ContractSettlementSchema)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args, contract_id):
        """A contract's monthly settlement (结算): per line the delivered, verified and unverified visits, the
        billable units and the amount owed (应付金额), the total and its split by funding source, and the visits
        not paid yet with the exceptions in their way. As frozen with the month's report (with what changed
        since), or as it stands today while the month is not frozen."""
        return services.contract_settlement(current_principal(), contract_id, args["month"])


@blp.route("/contracts/<int:contract_id>/settlement/export")
class SettlementExport(MethodView):
    @requires(Permission.REPORTS_READ)
    @blp.arguments(s.SettlementExportArgs, location="query")
    @blp.response(200)
    @file_response("The settlement as CSV, XLSX or PDF", exports.MIMETYPES.values())
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args, contract_id):
        """The monthly settlement as a file (money in yuan): CSV (lines, total, funding split, visits not paid
        yet), XLSX (the same on sheets, with the differences since freezing) or PDF (a settlement sheet)."""
        content, filename = exports.export_settlement(current_principal(), contract_id, args["month"],
                                                      args["format"])
        return _file(content, args["format"], filename)


@blp.route("/reports/scores")
class Scores(MethodView):
    @requires(Permission.REPORTS_READ)
    @blp.response(200, s.ScoreSchema(many=True))
    def get(self):
        """Each organisation's latest composite score, with its components and weights (a provider: its own)."""
        return services.scores_visible(current_principal())
