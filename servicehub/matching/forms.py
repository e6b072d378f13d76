"""Web forms of the matching pages, and the words pages use for matching's coded values.

The forms check presence and format; the matching services decide whether a step is allowed (who,
from which state, the hard rules) and refuse with a Conflict, ValidationFailed or PermissionDenied
that the views show on the page.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, IntegerField, SelectField, SelectMultipleField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from servicehub.matching.models import ReferralStatus
from servicehub.web.format import choices, define_labels
from servicehub.web.forms import FilterForm, PageForm, int_or_none

# --- the words for coded values -------------------------------------------------------------

LABELS = define_labels(
    {
        "referral_status": {
            ReferralStatus.PROPOSED: _l("Proposed"),
            ReferralStatus.OFFERED: _l("Offered, awaiting answer"),
            ReferralStatus.ACCEPTED: _l("Accepted"),
            ReferralStatus.DECLINED: _l("Declined"),
            ReferralStatus.ACTIVE: _l("Being served"),
            ReferralStatus.SUSPENDED: _l("Suspended"),
            ReferralStatus.CLOSED: _l("Referral closed"),
            ReferralStatus.WITHDRAWN: _l("Withdrawn"),
        },
        # The hard rules of servicehub.matching.eligibility, by their codes.
        "rule": {
            "already_referred": _l("The need already has a live referral"),
            "no_line": _l("No contract line for this service"),
            "organisation_inactive": _l("Organisation not active"),
            "contract_inactive": _l("Contract not in force"),
            "contract_period": _l("Contract period does not cover the start"),
            "area_not_covered": _l("Contract does not cover the area"),
            "class_not_covered": _l("Contract does not serve the assistance class"),
            "no_qualified_worker": _l("No qualified worker"),
            "no_worker_of_gender": _l("No worker of the gender asked for"),
            "declined_before": _l("Declined this need before"),
            "line_exhausted": _l("Not enough left on the contract line"),
        },
        # Why a run left a need unplaced.
        "unmatched": {
            "capacity": _l("The eligible contract lines are used up by other needs"),
            "no_eligible_organisation": _l("No organisation can serve this need"),
        },
        # The factors of a match score (servicehub.matching.scoring).
        "factor": {
            "distance": _l("Distance"),
            "performance": _l("Performance"),
            "continuity": _l("Continuity"),
            "price": _l("Price"),
            "load": _l("Load"),
        },
        # Buttons for the lifecycle steps, and the words for a step taken.
        "step": {
            "offer": _l("Offer"),
            "withdraw": _l("Withdraw"),
            "accept": _l("Accept"),
            "decline": _l("Decline"),
            "suspend": _l("Suspend"),
            "resume": _l("Resume"),
            "close": _l("Close"),
        },
        "step_done": {
            "create": _l("Created"),
            "update": _l("Changed"),
            "offer": _l("Offered"),
            "withdraw": _l("Withdrawn"),
            "accept": _l("Accepted"),
            "decline": _l("Declined"),
            "suspend": _l("Suspended"),
            "resume": _l("Resumed"),
            "close": _l("Referral closed"),
            "offer_expired": _l("Offer expired unanswered"),
        },
    }
)


# --- filters --------------------------------------------------------------------------------


class QueueFilterForm(FilterForm):
    """Filters of the unmet-needs queue (and which run's summary to show); a value not offered is ignored."""

    town = SelectField(_l("Town"), default="")
    service_type = SelectField(_l("Service"), default="")
    priority = SelectField(_l("Priority"), default="")
    run = IntegerField(validators=[Optional(), NumberRange(min=1)])

    def filters(self) -> dict:
        """The service's list arguments."""
        return {name: self.value(name) for name in ("town", "service_type", "priority")}


class ReferralFilterForm(FilterForm):
    """Filters of the referrals list (managers and auditors); a value not offered is ignored."""

    status = SelectField(_l("Status"), choices=choices("referral_status", _l("Any")), default="")
    organisation_id = SelectField(_l("Organisation"), coerce=int_or_none)
    town = SelectField(_l("Town"), default="")

    def filters(self) -> dict:
        """The service's list arguments."""
        return {name: self.value(name) for name in ("status", "organisation_id", "town")}


# --- steps ----------------------------------------------------------------------------------


class StepForm(PageForm):
    """A one-click step (offer, accept, lock …): the CSRF token and the page to go back to."""

    next = HiddenField()


class ReasonForm(StepForm):
    """A step that needs a reason (decline, suspend, close, withdraw)."""

    reason = TextAreaField(
        _l("Reason"), validators=[DataRequired(message=_l("Give a reason.")), Length(max=500)]
    )


class RunForm(StepForm):
    """Run matching for every open need the manager may see, or one town's."""

    town = SelectField(_l("Needs of"), validate_choice=False)


class ChooseForm(StepForm):
    """A manager's own choice of contract line for a need (an alternative of the last run)."""

    line_id = IntegerField(validators=[InputRequired(), NumberRange(min=1)])


class BulkOfferForm(StepForm):
    """Offer every ticked proposal at once."""

    referral_ids = SelectMultipleField(
        coerce=int, validate_choice=False,
        validators=[DataRequired(message=_l("Tick at least one proposal to offer."))],
    )
