"""`servicehub import FILE --kind … [--dry-run]`: the same checks as the API, from the command line."""

from servicehub.imports.services import SAMPLES_DIR
from tests.imports.support import recipient_rows, xlsx
from tests.imports.test_api import counts


def run(runner, *args):
    return runner.invoke(args=["import", *map(str, args)])


def test_a_dry_run_checks_and_writes_nothing(app, runner, demo):
    before = counts(app)
    result = run(runner, SAMPLES_DIR / "recipients.xlsx", "--kind", "recipients", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "recipients.xlsx (xlsx): 5 rows, 5 valid, 0 invalid, 0 duplicates" in result.output
    assert counts(app) == before


def test_a_commit_writes_every_row_as_the_command_line_user(app, runner, demo):
    before = counts(app)
    result = run(runner, SAMPLES_DIR / "recipients.csv", "--kind", "recipients")
    assert result.exit_code == 0, result.output
    after = counts(app)
    assert after["recipients"] == before["recipients"] + 5
    result = run(runner, SAMPLES_DIR / "needs.csv", "--kind", "needs")
    assert result.exit_code == 0, result.output
    assert counts(app)["needs"] == before["needs"] + 6


def test_bad_rows_exit_1_listing_each_and_write_nothing(app, runner, demo, tmp_path):
    rows = recipient_rows(3)
    rows[2][2] = "低保户"
    path = tmp_path / "名单.xlsx"
    path.write_bytes(xlsx(rows))
    before = counts(app)
    result = run(runner, path, "--kind", "recipients")
    assert result.exit_code == 1
    assert "row 3, 救助类别: " in result.output and "低保户" in result.output
    assert counts(app) == before


def test_a_file_that_is_not_a_spreadsheet_exits_1_with_a_clear_message(app, runner, demo, tmp_path):
    path = tmp_path / "photo.xlsx"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    before = counts(app)
    result = run(runner, path, "--kind", "workers")
    assert result.exit_code == 1
    assert "PNG" in result.output and "Traceback" not in result.output
    assert counts(app) == before


def test_the_kind_is_required_and_checked(runner, demo):
    result = run(runner, SAMPLES_DIR / "recipients.csv", "--kind", "visits")
    assert result.exit_code == 2 and "visits" in result.output
