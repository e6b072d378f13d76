"""ServiceHub: service-type social assistance (服务类社会救助) for a district civil-affairs bureau.

This package's top level stays free of Flask imports so that the pure modules
(`scheduling.solver`, `evaluation.kpis`, ...) can be imported without the web stack.
"""

__version__ = "0.1.0"


def create_app(config=None):
    """Build the Flask application (see `servicehub.app.create_app`)."""
    from servicehub.app import create_app as _create_app

    return _create_app(config)
