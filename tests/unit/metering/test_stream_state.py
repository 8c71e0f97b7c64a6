"""StreamState: the running record a stream meter builds."""

from __future__ import annotations

from addon.metering.stream_state import StreamState
from addon.metering.usage import MeterResult, Usage


def test_a_fresh_state_reports_a_streamed_result_without_usage() -> None:
    assert StreamState().result() == MeterResult(streamed=True)


def test_the_first_error_is_the_cause() -> None:
    state = StreamState()
    state.error("stream_error:overloaded_error")
    state.error("stream_error:api_error")
    assert state.result().error_kind == "stream_error:overloaded_error"


def test_load_counts_what_is_not_a_json_object() -> None:
    state = StreamState()
    assert state.load('{"a": 1}') == {"a": 1}
    assert state.load("[1]") is None
    assert state.load("{broken") is None
    assert state.load("[" * 50_000) is None
    assert state.result().extras == {"bad_events": 3}


def test_text_is_joined_and_non_strings_are_skipped() -> None:
    state = StreamState()
    for value in ("a", None, 3, "", "b"):
        state.add_text(value)
    state.usage = Usage(1, 0, 0, 0, 2, 0)
    result = state.result()
    assert (result.output_text, result.usage) == ("ab", Usage(1, 0, 0, 0, 2, 0))


def test_result_is_a_snapshot() -> None:
    state = StreamState()
    state.extras["service_tier"] = "flex"
    result = state.result()
    state.extras["service_tier"] = "priority"
    state.add_text("later")
    assert (result.extras, result.output_text) == ({"service_tier": "flex"}, "")


def test_a_request_id_read_from_the_body_goes_into_the_result() -> None:
    state = StreamState()
    state.provider_request_id = "fx-gemini-0016"
    assert state.result().provider_request_id == "fx-gemini-0016"
