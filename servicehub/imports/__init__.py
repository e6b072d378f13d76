"""Spreadsheet imports of recipients, needs and workers: dry run first, then all rows or none."""
