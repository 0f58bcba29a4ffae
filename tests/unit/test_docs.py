"""The generated reference pages match the code they are rendered from."""

from __future__ import annotations

import shutil

from recovery_helpers import docs


def test_checked_in_policy_page_matches_policies_py():
    assert docs.stale() == [], "docs/reference/policies.md differs from policies.py: run `make docs`"


def test_check_fails_when_the_page_drifts(tmp_path, capsys):
    page = tmp_path / docs.POLICIES_PAGE
    page.parent.mkdir(parents=True)
    shutil.copy(docs.ROOT / docs.POLICIES_PAGE, page)
    assert docs.main(["--check", "--root", str(tmp_path)]) == 0
    page.write_text(page.read_text().replace("dynamodb:PutItem", "dynamodb:PutItemX"))
    assert docs.main(["--check", "--root", str(tmp_path)]) == 1
    assert "out of date" in capsys.readouterr().err
