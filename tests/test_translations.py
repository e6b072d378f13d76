"""Every string shown to users has a Chinese translation, services' messages (marked N_) included."""

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent


def test_every_message_is_translated_to_chinese(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "-k", "_l",
         "-k", "lazy_gettext", "-k", "N_", "-o", str(pot), "."],
        cwd=ROOT, check=True, capture_output=True,
    )
    with pot.open("rb") as fh:
        wanted = {m.id for m in read_po(fh) if m.id}
    with (ROOT / "servicehub/translations/zh/LC_MESSAGES/messages.po").open("rb") as fh:
        translated = {m.id for m in read_po(fh) if m.id and m.string and not m.fuzzy}
    missing = sorted(wanted - translated)
    assert not missing, "untranslated (run `make messages`, then translate in messages.po):\n" + "\n".join(missing)


def test_translations_keep_every_placeholder():
    import re

    with (ROOT / "servicehub/translations/zh/LC_MESSAGES/messages.po").open("rb") as fh:
        catalog = read_po(fh)
    broken = [
        m.id for m in catalog
        if m.id and m.string and sorted(re.findall(r"%\(\w+\)[sd]", m.id)) != sorted(re.findall(r"%\(\w+\)[sd]", m.string))
    ]
    assert not broken, "translations that lose or invent a placeholder:\n" + "\n".join(broken)


def test_the_catalogue_compiles_as_make_compiles_it(tmp_path):
    # `make` runs `pybabel compile`, which refuses a catalogue whose placeholders babel finds incompatible
    # (a "%" in an English msgid reads as a placeholder, e.g. "80% delivered").
    result = subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "compile", "-d", "servicehub/translations",
         "-o", str(tmp_path / "messages.mo"), "-l", "zh", "-i", "servicehub/translations/zh/LC_MESSAGES/messages.po"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr


def test_services_mark_their_plain_messages_for_the_pages():
    # A service's refusal reaches pages too: a message it raises as plain text must be marked N_ so that the
    # page can show it in Chinese (an f-string carries data and is worded by the page that shows it).
    import re

    unmarked = []
    for path in (ROOT / "servicehub").rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r'raise (ValidationFailed|Conflict|NotFound|PermissionDenied|RateLimited)\("', line):
                unmarked.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not unmarked, "wrap the message in N_(...):\n" + "\n".join(unmarked)
