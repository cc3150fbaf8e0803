"""The Range parser bounds what it accepts: no header, however long or strange, raises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.delivery.streaming import RangePlan, plan_range

pytestmark = pytest.mark.no_database

SHA = "a" * 64
SIZE = 1000


def plan(value: str) -> RangePlan:
    return plan_range({"range": value}, size=SIZE, sha256=SHA)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Longer than any one range: ignored (RFC 9110 allows it), the whole file is sent.
        ("bytes=" + "9" * 5000 + "-", RangePlan(200, 0, SIZE - 1)),
        ("bytes=0-" + "9" * 5000, RangePlan(200, 0, SIZE - 1)),
        ("bytes=" + "0" * 5000 + "5-9", RangePlan(200, 0, SIZE - 1)),
        # Numbers past any object, within the length bound.
        ("bytes=" + "9" * 90 + "-", RangePlan(416)),  # starts past the file
        ("bytes=0-" + "9" * 90, RangePlan(206, 0, SIZE - 1)),  # ends past it: clamped
        ("bytes=-" + "9" * 90, RangePlan(206, 0, SIZE - 1)),  # a suffix longer than it
        ("bytes=" + "0" * 90 + "5-9", RangePlan(206, 5, 9)),  # leading zeros are no size
        ("bytes=" + "9" * 30 + "-" + "9" * 31, RangePlan(416)),
        ("bytes=\u0663-", RangePlan(200, 0, SIZE - 1)),  # Arabic-Indic digit: not a range
        ("bytes=\u00b2-", RangePlan(200, 0, SIZE - 1)),  # superscript two
        ("bytes=0-1," * 50, RangePlan(200, 0, SIZE - 1)),  # too long for one range: ignored
        ("bytes=10-19", RangePlan(206, 10, 19)),
    ],
)
def test_hostile_range_headers_are_bounded(value: str, expected: RangePlan) -> None:
    assert plan(value) == expected


@given(st.text(max_size=400) | st.from_regex(r"\Abytes=\d{0,6000}-\d{0,6000}\Z"))
def test_no_range_header_raises_and_every_range_served_is_inside_the_file(value: str) -> None:
    result = plan(value)
    assert result.status in (200, 206, 416)
    if result.status == 206:
        assert 0 <= result.start <= result.end < SIZE
