from addon.dashboard.series import MAX_BUCKETS, buckets, project_series


def test_buckets_fill_the_gaps_between_the_first_and_the_last() -> None:
    assert buckets(["2025-01-03", "2025-01-01"], "day") == [
        "2025-01-01",
        "2025-01-02",
        "2025-01-03",
    ]
    assert buckets(["2025-01-01 23", "2025-01-02 01"], "hour") == [
        "2025-01-01 23",
        "2025-01-02 00",
        "2025-01-02 01",
    ]
    assert buckets([], "day") == []


def test_too_many_buckets_are_not_filled() -> None:
    seen = ["2000-01-01", "2025-01-01"]
    assert len(buckets(seen, "day")) == 2 < MAX_BUCKETS


def test_series_are_per_project_with_zeros_where_nothing_happened() -> None:
    rows = [
        {"project": "b", "bucket": "2025-01-03", "requests": 2, "input_tokens": 5,
         "output_tokens": 1, "cost_picousd": 10**12, "errors": 0},
        {"project": "a", "bucket": "2025-01-01", "requests": 1, "input_tokens": 7,
         "output_tokens": 3, "cost_picousd": 5 * 10**11, "errors": 1},
    ]  # fmt: skip
    out = project_series(rows, "day")
    assert out["labels"] == ["2025-01-01", "2025-01-02", "2025-01-03"]
    a, b = out["projects"]
    assert a == {"project": "a", "cost_usd": ["0.50", "0.00", "0.00"], "tokens": [10, 0, 0],
                 "requests": [1, 0, 0]}  # fmt: skip
    assert b["cost_usd"] == ["0.00", "0.00", "1.00"] and b["requests"] == [0, 0, 2]
