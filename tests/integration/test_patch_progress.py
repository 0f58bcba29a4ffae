"""The one progress bar the parent shows while worker processes patch (``max_processes > 1``)."""

from __future__ import annotations

import multiprocessing
from typing import Any

from recovery_helpers import patch, progress
from tests.unit.patch.test_patch import assert_recovered, make_scenario


class _Watched:
    """The real bar, with every position it was moved to and whether a patch worker was still running then."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.moves: list[tuple[int, bool]] = []

    def update(self, n: int = 1) -> None:
        self.bar.update(n)
        workers = [p for p in multiprocessing.active_children() if p.name.startswith("patch-segment-")]
        self.moves.append((self.bar.n, bool(workers)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bar, name)


def test_the_parent_shows_one_bar_that_moves_while_two_processes_patch(
    sandbox, aws, tmp_path, unique_name, monkeypatch, capsys
):
    sc = make_scenario(aws, tmp_path, unique_name, n=24)
    sc.approve()
    bars: list[_Watched] = []
    real = progress.progress_bar

    def watched(**kw: Any) -> Any:
        bars.append(_Watched(real(**kw)))
        return bars[-1]

    monkeypatch.setattr(progress, "progress_bar", watched)
    # 3 writes/s per process: the run lasts seconds, long enough for the parent to look in between
    report = patch.apply_plan(sc.ctx, dry_run=False, max_processes=2, max_write_rate=6)
    assert report.ok and report.patched == len(sc.changed_ids()), report.summary()
    assert_recovered(sc, sc.changed_ids())

    assert len(bars) == 1, "one bar for the whole run, none per worker"
    (bar,) = bars
    total = report.to_do
    assert bar.total == total and bar.n == total, "the bar reaches the keys to do over both segments"
    during = [n for n, running in bar.moves if running and 0 < n < total]
    assert during, f"the bar moved only after the workers had ended: {bar.moves}"
    assert [n for n, _ in bar.moves] == sorted(n for n, _ in bar.moves), "it never moves back"
    assert f"patched {total}/{total} items in" in capsys.readouterr().out  # headless: one final line
