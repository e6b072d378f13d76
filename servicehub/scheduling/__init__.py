"""Scheduling: visit generation, the OR-Tools solver (pure) and rosters.

`travel`, `problem` and `solver` are pure modules: plain data in, plain data out, no Flask or SQLAlchemy.
"""
