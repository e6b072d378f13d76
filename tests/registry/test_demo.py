"""The demo district: reproducible, valid, and the committed files match the generator."""

from servicehub.registry import demo
from servicehub.registry.cli import read_demo_files
from servicehub.registry.identifiers import credit_code_problem


def test_same_seed_same_district():
    assert demo.build_demo(7) == demo.build_demo(7)


def test_committed_demo_files_match_the_generator():
    assert read_demo_files() == demo.build_demo(), "run `servicehub demo build` and commit seed_data/demo/"


def test_organisations_have_valid_credit_codes():
    organisations = demo.build_demo()["organisations"]
    assert len(organisations) == 8
    assert all(credit_code_problem(o["credit_code"]) is None for o in organisations)


def test_loading_the_demo_twice_changes_nothing(app_ctx):
    from servicehub.registry import services

    services.load_demo(read_demo_files())
    report = services.load_demo(read_demo_files())
    assert not report.changed
