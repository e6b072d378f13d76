"""Validators the API's schemas share."""

from marshmallow import validate

MAX_ID = 2**31 - 1  # PostgreSQL's integer: a larger number matches no row and must not reach the database
ID = validate.Range(min=1, max=MAX_ID)  # a row's id, or any count that starts at 1
