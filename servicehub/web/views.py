"""Shell pages: sign in and out, the language switch and the start page of each role."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from servicehub.auth import services as auth_services
from servicehub.auth.access import client_ip, current_principal, public, requires, safe_next_url
from servicehub.auth.permissions import Permission, Role
from servicehub.config import LANGUAGES
from servicehub.errors import RateLimited, Unauthenticated
from servicehub.matching import services as matching
from servicehub.visits import queue
from servicehub.visits import services as visits
from servicehub.web.forms import LoginForm

blp = Blueprint("web", __name__, template_folder="templates")


@blp.route("/login", methods=["GET", "POST"])
@public
def login():
    """The sign-in form; on success a fresh session, then the page asked for or the start page."""
    if current_user.is_authenticated:
        return redirect(url_for("web.dashboard"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = auth_services.authenticate(form.username.data, form.password.data, client_ip())
        except Unauthenticated as exc:
            status = exc.status
            flash(_("Wrong username or password."), "error")
        except RateLimited as exc:
            status = exc.status
            flash(_wait_message(int(exc.headers["Retry-After"])), "error")
        else:
            language = user.language or session.get("lang")
            session.clear()  # a new session on sign-in: nothing carried over from before (fixation)
            if language:
                session["lang"] = language
            login_user(user)
            return redirect(safe_next_url(request.args.get("next")) or url_for("web.dashboard"))
    elif request.method == "POST":
        status = 400
    return render_template("web/login.html", form=form), status


def _wait_message(seconds: int) -> str:
    """How long the sign-in form must wait, in seconds under two minutes, else in whole minutes."""
    if seconds < 120:
        return _("Too many failed sign-in attempts. Wait %(seconds)s s, then try again.", seconds=seconds)
    return _("Too many failed sign-in attempts. Wait %(minutes)d min, then try again.", minutes=-(-seconds // 60))


@blp.post("/logout")
@public
def logout():
    """Sign out and forget the session."""
    language = session.get("lang")
    logout_user()
    session.clear()
    if language:
        session["lang"] = language
    flash(_("You have signed out."), "success")
    return redirect(url_for("web.login"))


@blp.get("/lang/<code>")
@public
def set_language(code: str):
    """Switch the page language (kept in the session) and go back."""
    if code in LANGUAGES:
        session["lang"] = code
    return redirect(safe_next_url(request.args.get("next")) or url_for("web.dashboard"))


@blp.get("/")
@requires(Permission.AUTHENTICATED)
def dashboard():
    """The start page of the signed-in role, with the counts of the work waiting for it."""
    principal = current_principal()
    waiting = {}
    if principal.role == Role.MANAGER:
        waiting["unmet_needs"] = matching.unmet_need_count(principal)
    if principal.can(Permission.REFERRALS_RESPOND):
        waiting["offers"] = matching.offers_waiting_count(principal)
    if principal.role in (Role.MANAGER, Role.PROVIDER_ADMIN):
        waiting["alerts"] = visits.open_alert_count(principal)
        # The exceptions waiting for the caller: a provider's to explain, the bureau's to decide.
        waiting["exceptions_status"] = "open" if principal.role == Role.PROVIDER_ADMIN else "resolved"
        waiting["exceptions"] = sum(n for by_status in queue.counts_by_code(
            principal, status=waiting["exceptions_status"]).values() for n in by_status.values())
    return render_template("web/dashboard.html", principal=principal, waiting=waiting)
