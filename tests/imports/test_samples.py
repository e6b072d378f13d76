"""The sample files in seed_data/samples/: what their generator writes, and every one imports cleanly."""

import pytest

from servicehub.imports.reader import read_sheet
from servicehub.imports.samples import SAMPLES, write_samples
from servicehub.imports.services import SAMPLES_DIR
from tests.imports.test_api import counts, upload


def cells(data: bytes):
    sheet = read_sheet(data)
    return sheet.header, [row.cells for row in sheet.rows()]


def test_the_committed_samples_are_what_the_generator_writes(tmp_path):
    written = write_samples(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in SAMPLES_DIR.iterdir())
    for path in written:
        committed = (SAMPLES_DIR / path.name).read_bytes()
        if path.suffix == ".csv":
            assert committed == path.read_bytes(), f"{path.name}: run `servicehub imports samples`"
        else:  # workbooks carry timestamps: compare their contents
            assert cells(committed) == cells(path.read_bytes()), f"{path.name}: run `servicehub imports samples`"


def test_samples_are_utf8_csv_with_a_bom_and_chinese_headers():
    data = (SAMPLES_DIR / "recipients.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert read_sheet(data).header[:3] == ["姓名", "身份证号", "救助类别"]


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_every_sample_passes_a_dry_run_and_commits(app, client, auth_headers, fmt):
    manager, provider = auth_headers("manager"), auth_headers("provider")
    for kind, who in (("recipients", manager), ("needs", manager), ("workers", provider)):
        data = (SAMPLES_DIR / f"{kind}.{fmt}").read_bytes()
        before = counts(app)
        dry = upload(client, who, data, kind=kind, name=f"{kind}.{fmt}")
        assert dry.status_code == 200, dry.get_json()
        assert dry.get_json()["valid"] == len(SAMPLES[kind]) and counts(app) == before
        committed = upload(client, who, data, kind=kind, name=f"{kind}.{fmt}", dry_run=False)
        assert committed.status_code == 201, committed.get_json()
        assert counts(app)[kind] == before[kind] + len(SAMPLES[kind])
