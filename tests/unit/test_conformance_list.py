"""The conformance list's format (kind<TAB>title) and its rule: unsorted and lenient lines fail the
run (lenient ones only reported with --allow-lenient)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[2] / "conformance" / "run.py"


@pytest.fixture(scope="module")
def run():
    spec = importlib.util.spec_from_file_location("conformance_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lines_are_read_as_kind_and_title(run):
    text = "# header\n\nwording\tscan validations should x\nstate\tgetItem y if table is being created\n"
    assert run.parse_known(text) == {
        "scan validations should x": "wording",
        "getItem y if table is being created": "state",
    }


def test_a_line_without_a_kind_is_unsorted(run):
    assert run.parse_known("query validations should z\n") == {"query validations should z": "unsorted"}


def test_an_unknown_kind_is_refused_with_its_line(run):
    with pytest.raises(ValueError, match="line 2: unknown kind 'harmless'"):
        run.parse_known("wording\ta\nharmless\tb\n")


def test_the_written_list_reads_back_the_same(run):
    known = {"b title": "behaviour", "a title": "lenient", "c title": "unsorted"}
    assert run.parse_known(run.format_known(known)) == known


def test_update_keeps_kinds_drops_fixed_titles_and_marks_new_ones_unsorted(run):
    known = {"fixed": "lenient", "still": "wording", "other suite": "state"}
    after = run.updated(known, ran={"fixed", "still", "new"}, failing={"still", "new"})
    assert after == {"still": "wording", "new": "unsorted", "other suite": "state"}


def test_unsorted_and_lenient_lines_fail_the_run_and_say_what_to_do(run, capsys):
    assert run.check_kinds({"a": "wording", "b": "behaviour", "c": "state"}) == 0
    assert run.check_kinds({"a": "wording", "b": "lenient"}) == 1
    out = capsys.readouterr().out
    assert "LENIENT DIFFERENCE: b" in out and "1 LENIENT DIFFERENCE(S)" in out
    assert "Fix each one" in out and "This fails the run" in out
    assert run.check_kinds({"a": "wording", "c": "unsorted"}) == 1
    assert "UNSORTED DIFFERENCE: c" in capsys.readouterr().out


def test_allow_lenient_only_reports_a_lenient_line(run, capsys):
    assert run.check_kinds({"a": "wording", "b": "lenient"}, require_no_lenient=False) == 0
    assert "Not failing the run (--allow-lenient)" in capsys.readouterr().out
    assert run.check_kinds({"a": "wording", "c": "unsorted"}, require_no_lenient=False) == 1


def test_the_committed_list_holds_no_lenient_difference(run):
    lenient = [title for title, kind in run.read_known().items() if kind in run.FORBIDDEN]
    assert lenient == [], f"the sandbox accepts what DynamoDB refuses: fix {lenient}"


def test_the_committed_list_parses_and_has_only_known_kinds(run):
    known = run.read_known()
    assert known, "conformance/known-differences.txt is empty or missing"
    assert set(known.values()) <= set(run.KINDS)
