"""The end user and tags a client names: parsed, bounded, from a safe charset."""

from __future__ import annotations

import pytest

from addon.attribution import Attribution, body_user, parse_headers, split_tags


def test_no_headers_name_nobody() -> None:
    assert parse_headers([("content-type", "application/json")]) == Attribution()


def test_tags_are_trimmed_kept_once_in_order_and_add_up_across_headers() -> None:
    got = parse_headers(
        [
            ("X-Tollkeeper-Tags", " b , a,,b "),
            ("x-tollkeeper-tags", "c"),
            ("x-tollkeeper-user", " u "),
        ]
    )
    assert got == Attribution(user="u", tags=("b", "a", "c"))
    assert got.tags_text == "b,a,c"
    assert split_tags(got.tags_text) == ["b", "a", "c"]


def test_user_ids_of_the_usual_shapes_pass() -> None:
    for user in ("alice@example.com", "u_1", "org/team:42", "aGVsbG8+/w==", "x" * 128):
        assert parse_headers([("x-tollkeeper-user", user)]).user == user


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ([("x-tollkeeper-user", "x" * 129)], "1-128"),
        ([("x-tollkeeper-user", "two words")], "1-128"),
        ([("x-tollkeeper-user", "é")], "1-128"),
        ([("x-tollkeeper-user", "a"), ("x-tollkeeper-user", "b")], "more than once"),
        ([("x-tollkeeper-tags", ",".join(f"t{i}" for i in range(11)))], "more than 10"),
        ([("x-tollkeeper-tags", "t" * 65)], "1-64"),
        ([("x-tollkeeper-tags", 'a,"b"')], "1-64"),
        ([("x-tollkeeper-tags", "a b")], "1-64"),
    ],
)
def test_malformed_values_are_refused_with_a_reason(headers, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_headers(headers)


def test_an_empty_user_header_names_nobody_and_ten_tags_pass() -> None:
    tags = ",".join(f"t{i}" for i in range(10))
    assert parse_headers([("x-tollkeeper-user", " "), ("x-tollkeeper-tags", tags)]) == Attribution(
        tags=tuple(tags.split(","))
    )


def test_the_body_user_counts_only_when_it_is_a_valid_id() -> None:
    assert body_user({"user": "u-1"}) == "u-1"
    assert body_user({"user": "has space"}) is None
    assert body_user({"user": 42}) is None
    assert body_user([]) is None
    assert split_tags("") == [] and split_tags(None) == []
