"""Validators the API's schemas share."""

from marshmallow import validate

MAX_ID = 2**31 - 1  # PostgreSQL's integer: a larger number matches no row and must not reach the database
ID = validate.Range(min=1, max=MAX_ID)  # a row's id, or any count that starts at 1
# A month, YYYY-MM, of a year there is (0001 to 9999: no year 0000).
MONTH_PATTERN = r"^([0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)-(0[1-9]|1[0-2])$"
