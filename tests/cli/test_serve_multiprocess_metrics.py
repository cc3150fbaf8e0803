from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.cli.server import _prepare_multiprocess_metrics


def test_several_workers_share_an_emptied_metrics_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # setenv first so that monkeypatch restores the variable's absence afterwards: the
    # function sets it in os.environ, and later tests in this process must not inherit it.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "placeholder")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    stale = tmp_path / "prometheus-multiproc" / "counter_123.db"
    stale.parent.mkdir()
    stale.write_bytes(b"left by a previous run")
    _prepare_multiprocess_metrics(tmp_path)
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert directory == (tmp_path / "prometheus-multiproc").resolve()
    assert list(directory.iterdir()) == []


def test_the_multiprocess_variable_does_not_leak_into_later_tests() -> None:
    # Runs after the tests above in the same process (file order): the observability tests
    # rely on in-process counters.
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_an_operator_chosen_directory_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.db").write_bytes(b"x")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(mine))
    _prepare_multiprocess_metrics(tmp_path)
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(mine)
    assert (mine / "keep.db").exists()
    assert not (tmp_path / "prometheus-multiproc").exists()
