"""The integrity page (完整性校验) for auditors and admins: the public key checkpoints are signed with, the
checkpoints to download and copy away, a checkpoint taken now, and the verify run against them."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, send_file, url_for
from flask_babel import gettext as _

from servicehub.auth.access import requires
from servicehub.auth.permissions import Permission
from servicehub.errors import ValidationFailed
from servicehub.integrity import services

blp = Blueprint("integrity_pages", __name__, template_folder="templates")


def _page(verification=None, status: int = 200):
    key, key_problem = None, None
    try:
        key = services.public_key_info()
    except ValidationFailed as exc:
        key_problem = exc.message
    problems = [problem.render(_) for problem in verification.problems] if verification else []
    return render_template("integrity/index.html", key=key, key_problem=key_problem,
                           checkpoints=services.list_checkpoints(), verification=verification,
                           problems=problems), status


@blp.get("/integrity")
@requires(Permission.AUDIT_READ)
def index():
    """The public key, the checkpoints, and the buttons to take one and to verify."""
    return _page()


@blp.post("/integrity/verify")
@requires(Permission.AUDIT_READ)
def verify():
    """Verify the database against its chains, its ledger and every checkpoint; the findings on the page."""
    try:
        return _page(services.verify())
    except ValidationFailed as exc:
        flash(exc.message, "error")
        return redirect(url_for("integrity_pages.index"))


@blp.post("/integrity/checkpoint")
@requires(Permission.AUDIT_READ)
def checkpoint():
    """Take a signed checkpoint now."""
    try:
        taken = services.take_checkpoint()
        flash(_("Checkpoint %(file)s written: %(records)s records of %(chains)s organisations, %(reports)s frozen "
                "reports, the audit log at entry %(audit)s.", file=taken["file"], records=taken["records"],
                chains=taken["chains"], reports=taken["frozen_reports"], audit=taken["audit_records"]), "success")
    except ValidationFailed as exc:
        flash(exc.message, "error")
    return redirect(url_for("integrity_pages.index"))


@blp.get("/integrity/public-key.pem")
@requires(Permission.AUDIT_READ)
def public_key():
    """The public key as a PEM file."""
    info = services.public_key_info()
    return Response(info["pem"], mimetype="application/x-pem-file",
                    headers={"Content-Disposition": f"attachment; filename=servicehub-ledger-{info['key_id']}.pem"})


@blp.get("/integrity/checkpoints/<name>")
@requires(Permission.AUDIT_READ)
def download(name: str):
    """One checkpoint file, downloaded as it was written (audited)."""
    return send_file(services.checkpoint_file(name), mimetype="application/json", as_attachment=True,
                     download_name=name)
