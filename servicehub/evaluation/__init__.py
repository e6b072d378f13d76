"""Evaluation (效能评估): KPIs (a pure module), organisation scores and auditor reports."""
