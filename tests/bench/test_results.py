"""bench/results.py: each bench rewrites only its own section of RESULTS.md."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.results import HEADER, replace_section, write_section

pytestmark = pytest.mark.no_database


def test_sections_are_appended_then_replaced_in_place(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    write_section("upload", "## Upload\n\nv1", path)
    write_section("tokens", "## Tokens\n\nt1", path)
    write_section("upload", "## Upload\n\nv2\n", path)
    assert path.read_text() == (
        HEADER
        + "\n<!-- bench:upload -->\n## Upload\n\nv2\n<!-- /bench:upload -->\n"
        + "\n<!-- bench:tokens -->\n## Tokens\n\nt1\n<!-- /bench:tokens -->\n"
    )


def test_text_outside_the_section_is_kept_byte_for_byte() -> None:
    doc = "intro\n\n<!-- bench:a -->\nold\n<!-- /bench:a -->\n\nhand-written notes \\1 $x\n"
    assert replace_section(doc, "a", "new \\1") == (
        "intro\n\n<!-- bench:a -->\nnew \\1\n<!-- /bench:a -->\n\nhand-written notes \\1 $x\n"
    )


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    names = [f"b{i}" for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: write_section(n, f"section {n}", path), names))
    text = path.read_text()
    for n in names:
        assert f"<!-- bench:{n} -->\nsection {n}\n<!-- /bench:{n} -->" in text


@pytest.mark.parametrize("name", ["", "Upload", "a b", "x-->"])
def test_section_names_are_plain_words(name: str) -> None:
    with pytest.raises(ValueError, match="lowercase words"):
        replace_section("", name, "x")
