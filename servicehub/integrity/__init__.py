"""Signed checkpoints of the records the bureau pays on, and the verify that checks the database against them."""
