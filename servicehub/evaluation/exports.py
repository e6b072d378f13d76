"""Report downloads: CSV, XLSX and PDF from one report document (`services.build_document`)."""

from __future__ import annotations

import csv
import io
from datetime import date

from servicehub.auth.permissions import Principal
from servicehub.evaluation import services
from servicehub.evaluation.kpis import DEFINITION_BY_CODE, FIGURES

MIMETYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


def export_report(principal: Principal, fmt: str, first: date, last: date, group_by=(), **filters) -> tuple[bytes, str]:
    """A report the caller may run, as a file: (content, file name without extension)."""
    document = services.report_document(principal, first, last, group_by, **filters)
    return render(document, fmt), f"servicehub-kpis-{first.isoformat()}-{last.isoformat()}"


def export_frozen(principal: Principal, frozen_id: int, fmt: str) -> tuple[bytes, str]:
    """A frozen report as a file, rendered from what was stored when it was issued."""
    document = services.frozen_document(principal, frozen_id)
    return render(document, fmt), f"servicehub-frozen-report-{frozen_id}"


def render(document: dict, fmt: str) -> bytes:
    """The document in `fmt` (csv, xlsx, pdf)."""
    return {"csv": render_csv}[fmt](document)


def group_label(report: dict, key: dict, lang: str = "zh") -> list[str]:
    """A group's key in words: the names of its organisation, service type … and its period label."""
    labels = report.get("labels", {})
    return [labels.get(name, {}).get(str(value), {}).get(lang, str(value)) if value is not None else "—"
            for name, value in key.items()]


def render_csv(document: dict) -> bytes:
    """One row per group (and the total), one column per figure; UTF-8 with a BOM so Excel reads Chinese."""
    report = document["report"]
    out = io.StringIO()
    writer = csv.writer(out)
    names = list(report["group_by"])
    writer.writerow(names + [f"{DEFINITION_BY_CODE[code].name_zh} ({code})" for code in FIGURES])
    rows = [(group_label(report, g["key"]), g["figures"]) for g in report["groups"]]
    rows.append((["合计 total"] + [""] * (len(names) - 1) if names else [], report["total"]))
    for label, figures in rows:
        writer.writerow(label + [_cell(figures.get(code)) for code in FIGURES])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return " ".join(f"{k}:{v}" for k, v in value.items())
    return str(value)
