"""Browser fixtures: the app served on 127.0.0.1 and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import flask_migrate
import pytest
from werkzeug.serving import make_server

from servicehub import create_app
from tests.conftest import TEST_CONFIG
from tests.support import (
    DEMO_PASSWORD,
    REQUIRE_BROWSER,
    create_demo_accounts,
    load_demo_district,
    unavailable,
)

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium tries to reach Google on this closed network.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class LiveServer:
    """The running app: its base URL and the app object (for checks through services)."""

    url: str
    app: object
    password: str = DEMO_PASSWORD


def live_app(directory: Path, **settings):
    """An app on its own SQLite file in `directory`, migrated (set it up inside `app.app_context()`)."""
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{directory / 'live.db'}",
                      "INSTANCE_PATH": str(directory), **settings})
    with app.app_context():
        flask_migrate.upgrade()
    return app


@contextmanager
def serving(app) -> Iterator[LiveServer]:
    """The app served on a random port of 127.0.0.1 by a thread of its own, until the block ends."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", app)
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """ServiceHub on a random port of 127.0.0.1, on its own SQLite file, with the demo district and accounts."""
    app = live_app(tmp_path_factory.mktemp("live"))
    with app.app_context():
        load_demo_district()
        create_demo_accounts()
    with serving(app) as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium from Debian (never a downloaded browser)."""
    if not CHROMIUM.exists():
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)", REQUIRE_BROWSER)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


def _page(browser, request, **context_options):
    context = browser.new_context(locale="zh-CN", **context_options)
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []

    def on_console(message):
        # A failed load is reported by on_response (pages may answer 4xx on purpose; assets may not).
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(f"console error: {message.text}")

    def on_response(response):
        if response.status >= 400 and response.request.resource_type != "document":
            problems.append(f"{response.status} for {response.request.resource_type} {response.url}")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    yield page
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not problems, "the page logged errors (CSP violations, script errors):\n" + "\n".join(problems)


@pytest.fixture
def page(browser, request):
    """A desktop-sized page; fails the test if the page logs script errors or CSP violations."""
    yield from _page(browser, request, viewport={"width": 1280, "height": 900})


@pytest.fixture
def phone(browser, request):
    """A phone-sized page (caregivers use phones)."""
    yield from _page(
        browser, request, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, device_scale_factor=2
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Remember each phase's report on the test item, so fixtures can screenshot failures."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def sign_in(page, server: LiveServer, username: str, password: str | None = None) -> None:
    """Sign in through the login form."""
    page.goto(f"{server.url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password or server.password)
    page.click("button[type=submit]")
