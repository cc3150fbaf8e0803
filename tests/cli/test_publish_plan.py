"""The local half of ``weightgate publish``: options parsed, folder walked, files assigned to
components, before any request is sent."""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.cli.publish_api import CHUNK, file_body, sha256_file
from app.cli.publish_plan import (
    ComponentSpec,
    PlanError,
    Stage,
    make_plan,
    matches,
    parse_components,
    parse_schedules,
)

pytestmark = pytest.mark.no_database


def folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def test_components_keep_order_and_repeats_add_patterns() -> None:
    specs = parse_components(["weights=*.safetensors", "tokenizer=tokenizer*", "weights=*.bin"])
    assert [(s.name, s.patterns) for s in specs] == [
        ("weights", ["*.safetensors", "*.bin"]),
        ("tokenizer", ["tokenizer*"]),
    ]


@pytest.mark.parametrize("bad", ["weights", "=*.bin", "weights=", " = "])
def test_malformed_component_options(bad: str) -> None:
    with pytest.raises(PlanError, match="expected NAME=PATTERN"):
        parse_components([bad])


def test_at_least_one_component() -> None:
    with pytest.raises(PlanError, match="at least one --component"):
        parse_components([])


def test_schedules_parse_to_utc_stages() -> None:
    specs = parse_components(["weights=*.bin", "tokenizer=tok*"])
    parse_schedules(
        ["weights=partner@2026-12-01T00:00:00Z,research@2027-01-01T01:00:00+01:00"], specs
    )
    assert specs[0].schedule == [
        Stage("partner", datetime(2026, 12, 1, tzinfo=UTC)),
        Stage("research", datetime(2027, 1, 1, tzinfo=UTC)),
    ]
    assert specs[0].schedule[1].as_json() == {"tier": "research", "at": "2027-01-01T00:00:00Z"}
    assert specs[1].schedule == []


NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_relative_stages_are_fixed_at_the_moment_of_the_call() -> None:
    specs = parse_components(["weights=*.bin"])
    parse_schedules(["weights=partner@+2h,research@+1d12h,open@+30d"], specs, now=NOW)
    assert [(s.tier, s.at, s.typed) for s in specs[0].schedule] == [
        ("partner", NOW + timedelta(hours=2), "+2h"),
        ("research", NOW + timedelta(days=1, hours=12), "+1d12h"),
        ("open", NOW + timedelta(days=30), "+30d"),
    ]
    assert specs[0].schedule[0].describe() == "partner at 2026-06-01T14:00:00Z (+2h)"
    assert specs[0].schedule[0].as_json() == {"tier": "partner", "at": "2026-06-01T14:00:00Z"}


def test_relative_and_absolute_stages_mix() -> None:
    specs = parse_components(["weights=*.bin"])
    parse_schedules(
        ["weights=partner@now,research@+90m,open@2026-07-01T00:00:00+02:00"], specs, now=NOW
    )
    assert [s.describe() for s in specs[0].schedule] == [
        "partner at 2026-06-01T12:00:00Z (now)",
        "research at 2026-06-01T13:30:00Z (+90m)",
        "open at 2026-06-30T22:00:00Z",
    ]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("weights", "expected NAME=TIER@WHEN"),
        ("weights=open@+2", "is not a relative time"),
        ("weights=open@+h", "is not a relative time"),
        ("weights=open@+2h30d", "largest unit first"),
        ("weights=open@+2y", "is not a relative time"),
        ("weights=open@+99999999999d", "too far ahead"),
        ("weights=open@+36526d", "too far ahead"),
        ("weights=partner@+2h,open@+1h", "strictly increasing"),
        ("weights=open@9999-12-31T23:59:59-14:00", "between 1900 and 9000"),
        ("adapters=open@2026-12-01T00:00:00Z", "which no --component defines"),
        ("weights=staff@2026-12-01T00:00:00Z", "unknown tier 'staff'"),
        ("weights=open", "should be TIER@WHEN"),
        ("weights=open@2026-12-01", "has no time zone"),
        ("weights=open@next tuesday", "is not an ISO 8601 date-time"),
        (
            "weights=research@2027-01-01T00:00:00Z,partner@2026-12-01T00:00:00Z",
            "strictly increasing",
        ),
        ("weights=partner@2026-12-01T00:00:00Z,open@2026-12-01T00:00:00Z", "strictly increasing"),
        ("weights=open@2026-12-01T00:00:00Z,partner@2027-01-01T00:00:00Z", "open further"),
        ("weights=internal@2026-12-01T00:00:00Z", "open further"),
    ],
)
def test_malformed_schedules(value: str, why: str) -> None:
    with pytest.raises(PlanError, match=why):
        parse_schedules([value], parse_components(["weights=*.bin"]), now=NOW)


def test_a_component_has_one_schedule() -> None:
    specs = parse_components(["weights=*.bin"])
    with pytest.raises(PlanError, match="given twice"):
        parse_schedules(
            ["weights=open@2026-12-01T00:00:00Z", "weights=open@2027-12-01T00:00:00Z"], specs
        )


@pytest.mark.parametrize(
    ("pattern", "path", "hit"),
    [
        ("*.safetensors", "model.safetensors", True),
        ("*.safetensors", "sub/dir/model.safetensors", True),  # no '/': any directory
        ("tokenizer*", "tokenizer.json", True),
        ("tokenizer*", "sub/tokenizer.json", True),
        ("tokenizer*", "my_tokenizer.json", False),
        ("onnx/*", "onnx/model.onnx", True),
        ("onnx/*", "other/onnx/model.onnx", False),  # with '/': from the root
        ("/onnx/*", "onnx/model.onnx", True),
        ("*.BIN", "x.bin", False),  # case matters, as on the server
    ],
)
def test_patterns_work_like_gitignore(pattern: str, path: str, hit: bool) -> None:
    assert matches(pattern, path) is hit


def test_plan_assigns_each_file_to_the_first_matching_component(tmp_path: Path) -> None:
    root = folder(
        tmp_path / "m",
        {
            "model-00001-of-00002.safetensors": b"a" * 10,
            "model-00002-of-00002.safetensors": b"b" * 20,
            "tokenizer.json": b"{}",
            "tokenizer_config.json": b"{}",
            "config.json": b"{}",
            "README.md": b"# hi",
        },
    )
    specs = parse_components(["weights=*.safetensors", "tokenizer=tokenizer*", "config=*.json"])
    plan = make_plan(root, specs, exclude=["README.md"])
    assert [(f.path, f.component, f.size) for f in plan.files] == [
        ("config.json", "config", 2),
        ("model-00001-of-00002.safetensors", "weights", 10),
        ("model-00002-of-00002.safetensors", "weights", 20),
        ("tokenizer.json", "tokenizer", 2),  # *.json matches too, but tokenizer came first
        ("tokenizer_config.json", "tokenizer", 2),
    ]
    assert plan.total_bytes == 36
    assert plan.files[1].source == root / "model-00001-of-00002.safetensors"


def test_unmatched_files_are_an_error_naming_them(tmp_path: Path) -> None:
    root = folder(tmp_path, {"a.bin": b"", "notes.txt": b"", "b.md": b""})
    with pytest.raises(PlanError) as err:
        make_plan(root, parse_components(["weights=*.bin"]), exclude=[])
    assert "2 file(s) match no --component pattern: b.md, notes.txt" in str(err.value)
    assert "--exclude" in str(err.value)


def test_hidden_files_are_skipped_unless_asked(tmp_path: Path) -> None:
    root = folder(
        tmp_path,
        {"a.bin": b"1", ".gitattributes": b"2", ".cache/huggingface/x.metadata": b"3"},
    )
    plan = make_plan(root, parse_components(["weights=*"]), exclude=[])
    assert [f.path for f in plan.files] == ["a.bin"]
    assert plan.skipped_hidden == 2
    everything = make_plan(root, parse_components(["weights=*"]), exclude=[], include_hidden=True)
    assert [f.path for f in everything.files] == [
        ".cache/huggingface/x.metadata",
        ".gitattributes",
        "a.bin",
    ]


def test_decomposed_names_become_nfc_release_paths(tmp_path: Path) -> None:
    nfd = unicodedata.normalize("NFD", "café.bin")
    root = folder(tmp_path, {nfd: b"x"})
    plan = make_plan(root, parse_components(["weights=*.bin"]), exclude=[])
    assert plan.files[0].path == unicodedata.normalize("NFC", "café.bin")
    assert plan.files[0].source.name == nfd  # read from where it really is


def test_symlinked_files_are_followed_and_dangling_ones_ignored(tmp_path: Path) -> None:
    blobs = folder(tmp_path / "blobs", {"abc": b"shard bytes"})
    root = tmp_path / "snapshot"
    root.mkdir()
    (root / "model.safetensors").symlink_to(blobs / "abc")
    (root / "gone.safetensors").symlink_to(tmp_path / "nowhere")
    plan = make_plan(root, parse_components(["weights=*.safetensors"]), exclude=[])
    assert [(f.path, f.size) for f in plan.files] == [("model.safetensors", 11)]


def test_empty_folder_component_without_files_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="no files to publish"):
        make_plan(tmp_path, parse_components(["weights=*"]), exclude=[])
    folder(tmp_path, {"a.bin": b""})
    with pytest.raises(PlanError, match="component\\(s\\) tokenizer match no file"):
        make_plan(tmp_path, parse_components(["weights=*.bin", "tokenizer=tok*"]), exclude=[])
    with pytest.raises(PlanError, match="is not a directory"):
        make_plan(tmp_path / "a.bin", [ComponentSpec("w", ["*"])], exclude=[])


def test_files_are_read_in_bounded_chunks(tmp_path: Path) -> None:
    data = bytes(range(256)) * (CHUNK // 256 * 2 + 3)  # a bit over two chunks
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    seen: list[int] = []
    chunks = list(file_body(path, seen.append))
    assert [len(c) for c in chunks] == [CHUNK, CHUNK, len(data) - 2 * CHUNK]
    assert b"".join(chunks) == data
    assert seen == [len(c) for c in chunks]
    hashed: list[int] = []
    assert sha256_file(path, hashed.append) == hashlib.sha256(data).hexdigest()
    assert sum(hashed) == len(data)
