"""House rules that a reviewer would otherwise have to remember."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "servicehub"

# Pure modules: plain data in, plain data out. They must import neither the web stack nor the ORM.
PURE_MODULES = [
    "servicehub.config",
    "servicehub.audit_policy",
    "servicehub.crypto",
    "servicehub.auth.permissions",
    "servicehub.auth.throttle",
    "servicehub.auth.policy",
    "servicehub.registry.identifiers",
    "servicehub.registry.phones",
    "servicehub.registry.rules",
    "servicehub.registry.demo",
    "servicehub.imports.reader",
    "servicehub.imports.columns",
    "servicehub.imports.samples",
    "servicehub.matching.problem",
    "servicehub.matching.eligibility",
    "servicehub.matching.scoring",
    "servicehub.matching.assignment",
    "servicehub.scheduling",
    "servicehub.scheduling.travel",
    "servicehub.scheduling.problem",
    "servicehub.scheduling.solver",
    "servicehub.scheduling.validate",
    "servicehub.scheduling.solomon",
    "servicehub.scheduling.benchmark",
    "servicehub.scheduling.recurrence",
    "servicehub.scheduling.day",
    "servicehub.scheduling.moves",
    "servicehub.visits.ledger",
    "servicehub.evaluation",
    "servicehub.evaluation.kpis",
    "servicehub.evaluation.score",
    "servicehub.visits.alerts",
    "servicehub.evaluation.charts",
    "servicehub.intake",
    "servicehub.intake.rules",
]
FORBIDDEN = ("flask", "flask_sqlalchemy", "flask_smorest", "sqlalchemy", "marshmallow", "werkzeug")


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_modules_import_neither_flask_nor_sqlalchemy(module):
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"{module} pulls in {out.strip()}"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.glob("*/api.py")) + sorted(PACKAGE.glob("*/views.py")), ids=str
)
def test_api_and_views_only_call_services(path):
    """Views parse, call a service and dump: no sessions, no models, no queries of their own."""
    imports = _imports(path)
    assert not {i for i in imports if i.endswith(".models") or ".models." in i}, f"{path} imports models"
    assert "servicehub.extensions.db" not in imports, f"{path} touches the database session"
    assert not {i for i in imports if i.startswith("sqlalchemy")}, f"{path} imports sqlalchemy"


def test_every_api_blueprint_is_registered():
    from servicehub.app import API_BLUEPRINTS

    declared = {f"servicehub.{p.parent.name}.api" for p in PACKAGE.glob("*/api.py")}
    assert declared == set(API_BLUEPRINTS)


def test_every_models_module_is_registered():
    from servicehub.app import MODEL_MODULES

    declared = {f"servicehub.{p.parent.name}.models" for p in PACKAGE.glob("*/models.py")}
    assert declared == set(MODEL_MODULES)
