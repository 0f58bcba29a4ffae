"""The generated reference pages match the code they are rendered from."""

from __future__ import annotations

import shutil

from recovery_helpers import docs


def test_checked_in_generated_pages_match_the_code():
    assert docs.stale() == [], "a generated page differs from the code: run `make docs`"


def test_check_fails_when_a_page_drifts(tmp_path, capsys):
    for rel in docs.pages():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(docs.ROOT / rel, tmp_path / rel)
    assert docs.main(["--check", "--root", str(tmp_path)]) == 0
    page = tmp_path / docs.POLICIES_PAGE
    page.write_text(page.read_text().replace("dynamodb:PutItem", "dynamodb:PutItemX"))
    assert docs.main(["--check", "--root", str(tmp_path)]) == 1
    assert f"{docs.POLICIES_PAGE} is out of date" in capsys.readouterr().err


def test_parameters_page_lists_every_declared_parameter():
    page = docs.parameters_page()
    for step in docs.STEPS:
        nb = docs.ROOT / "notebooks" / f"{docs.STEPS.index(step) + 1:02d}_{step}.ipynb"
        for name, _default, _comment in docs.notebook_parameters(nb):
            assert f"| `{name}` |" in page, (step, name)
