"""Two fields every record has, made by hand for speed: they must be exactly what the standard library makes."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from modelgate_proxy.exchange import new_request_id
from modelgate_proxy.stages.records.timestamps import format_ms, utc_now_ms


def test_request_ids_are_version_4_uuids_in_hex_and_do_not_repeat() -> None:
    ids = [new_request_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for rid in ids:
        parsed = uuid.UUID(hex=rid)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert parsed.hex == rid  # 32 lower-case hex digits, as uuid4().hex


def _reference(ns: int) -> str:
    when = datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(microsecond=ns % 1_000_000_000 // 1000)
    return when.isoformat(timespec="milliseconds")


def test_timestamps_are_isoformat_with_milliseconds_across_second_and_day_boundaries() -> None:
    boundary = 1_767_225_599 * 1_000_000_000  # 2025-12-31T23:59:59 UTC: a second before a new year
    cases = [boundary + step for step in (0, 1, 999_999, 1_000_000, 998_999_999, 999_000_000, 999_999_999,
                                          1_000_000_000, 1_000_999_999, 1_001_000_000, 61_500_000_000)]
    cases += [time.time_ns() + i * 7_654_321 for i in range(300)]
    for ns in cases:
        assert format_ms(ns) == _reference(ns), ns
    assert format_ms(boundary + 999_999_999) == "2025-12-31T23:59:59.999+00:00"
    assert format_ms(boundary + 1_000_000_000) == "2026-01-01T00:00:00.000+00:00"


def test_the_current_timestamp_is_now() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    stamp = datetime.fromisoformat(utc_now_ms())
    after = datetime.now(UTC)
    assert before <= stamp <= after
    assert stamp.tzinfo is not None
    assert stamp.utcoffset() is not None
    assert stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
