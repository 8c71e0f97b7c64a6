"""Admitting a request of a key with limits: estimate it, then reserve it in the database.

Runs in a worker thread of ``Admission`` (tiktoken and the database are blocking); the
hooks await it. During a database outage such requests get a 503 with ``retry-after``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from addon.errors import GatewayError, NotAllowed
from addon.keycache import KeyInfo
from addon.limits import Limits
from addon.metering.media import MediaUsage, media_kind, request_facts
from addon.metering.normalise import MAX_TOKENS_PER_FIELD
from addon.metering.usage import Usage
from addon.pricing.charge import media_cost
from addon.pricing.table import PriceBook
from addon.providers.wire import estimate_prompt_tokens
from addon.records import metered, price
from addon.store.db import describe_error
from addon.store.limits_repo import admit, release

log = logging.getLogger(__name__)

OUTPUT_LIMIT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
# What a request that does not bound its output reserves for it, in tokens
# (``tollkeeper_reserve_output_tokens``): a burst on a fresh key then overshoots its budget
# by at most one request's cost as long as answers stay below it.
DEFAULT_OUTPUT_TOKENS = 4096
MAX_CHOICES = 128  # ``n`` / ``candidateCount`` above it is the provider's to refuse


def check_metered(key: KeyInfo, api: str, method: str) -> None:
    """A key with a budget or a TPM limit reaches only endpoints the gateway meters (or knows
    to be free), so its limits hold for everything it spends; ``allow_unmetered`` lifts this
    (such requests are then recorded as unpriced). Raises ``NotAllowed`` (403)."""
    limited = key.budget_picousd is not None or key.tpm is not None
    if limited and not key.allow_unmetered and not metered(api, method):
        raise NotAllowed(
            f"The virtual key {key.id} has a budget or token limit and may use only endpoints"
            " tollkeeper meters; this one is not metered (keys update --allow-unmetered)."
        )


def estimate(api: str, model: str | None, raw_body: bytes | None) -> tuple[int, int | None]:
    """(prompt tokens, output tokens the client allows, None if it sets no bound)."""
    if not raw_body:
        return 0, None
    try:
        body: Any = json.loads(raw_body)
    except (ValueError, RecursionError):
        return 0, None
    if not isinstance(body, dict):
        return 0, None
    return estimate_prompt_tokens(api, body, model), output_limit(body)


def output_limit(body: dict[str, Any]) -> int | None:
    """The most output tokens a request allows, over all the choices it asks for: OpenAI's
    ``max_tokens``/``max_completion_tokens``/``max_output_tokens`` times ``n``, Anthropic's
    ``max_tokens``, Gemini's ``generationConfig.maxOutputTokens`` times ``candidateCount``."""
    config = body.get("generationConfig")
    config = config if isinstance(config, dict) else {}
    limits = [body.get(name) for name in OUTPUT_LIMIT_FIELDS]
    limit = _first_positive([*limits, config.get("maxOutputTokens")])
    if limit is None:
        return None
    choices = _first_positive([body.get("n"), config.get("candidateCount")]) or 1
    # clamped: a client's max_tokens=1e30 must not overflow the reservation's column
    return min(limit, MAX_TOKENS_PER_FIELD) * min(choices, MAX_CHOICES)


def _first_positive(values: list[Any]) -> int | None:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def reservation(
    prices: PriceBook,
    provider: str,
    api: str,
    model: str | None,
    raw_body: bytes | None,
    default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
) -> tuple[int, int]:
    """(picodollars, tokens) to reserve for a request, from its own body. Tokens: the prompt
    estimate plus the output limit it sets (what a TPM limit counts). Picodollars: those
    tokens priced, with ``default_output_tokens`` as the output of a request that sets no
    limit; for images and speech, what the request asks for, priced."""
    kind = media_kind(api)
    if kind is not None:
        return media_reservation(prices, provider, api, kind, model, raw_body), 0
    prompt, output = estimate(api, model, raw_body)
    billed = default_output_tokens if output is None else output
    cost = price(prices, provider, model, Usage(input_tokens=prompt, output_tokens=billed))
    return cost or 0, prompt + (output or 0)


def media_reservation(
    prices: PriceBook, provider: str, api: str, kind: str, model: str | None, body: bytes | None
) -> int:
    """Images: ``n`` images at the per-image price of the requested quality and size (an
    unset or ``auto`` one: high, 1024x1024); speech: its characters. Transcriptions: 0 (the
    duration is known only from the answer)."""
    facts = request_facts(api, body)
    model = model or facts.get("model")
    if kind == "image":
        size, quality = facts.get("size"), facts.get("quality")
        usage = MediaUsage(
            kind="image",
            images=facts.get("n", 1),
            size=size if size and size != "auto" else "1024x1024",
            quality=quality if quality and quality != "auto" else "high",
        )
    elif kind == "speech":
        usage = MediaUsage(kind="speech", characters=facts.get("characters", 0))
    else:
        return 0
    return media_cost(prices, provider, model, usage) or 0


def admit_request(
    *,
    engine: Engine,
    prices: PriceBook,
    limits: Limits,
    request_id: str,
    provider: str,
    api: str,
    model: str | None,
    raw_body: bytes | None,
    ttl: timedelta,
    instance_id: str | None = None,
    default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
) -> None:
    """Reserve the request or raise ``LimitExceeded``."""
    cost, tokens = reservation(prices, provider, api, model, raw_body, default_output_tokens)
    with Session(engine) as session:
        admit(
            session=session,
            limits=limits,
            request_id=request_id,
            now=datetime.now(UTC),
            reserve_picousd=cost,
            reserve_tokens=tokens,
            ttl=ttl,
            instance_id=instance_id,
        )


class LimitsUnavailable(GatewayError):
    """The database that holds budgets and rate limits does not answer: the request of a
    key with limits is not forwarded (every process shares those counters; admitting from a
    local guess would let each of them spend the whole budget). 503 with ``retry-after``."""

    status, code = 503, "limits_unavailable"
    category = "overloaded"


class Admission:
    """Admits requests of keys with limits on the gateway's own threads, within a deadline.

    The database work runs on a bounded executor of its own (never asyncio's default one,
    which a flood of other work could fill). A database error or no answer within
    ``timeout_s`` answers ``LimitsUnavailable``; a reservation the database commits after
    the deadline is released again, since its request was never forwarded.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        instance_id: str | None,
        workers: int = 4,
        timeout_s: float = 5.0,
        retry_after_s: int = 2,
        default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    ) -> None:
        self._engine = engine
        self._default_output_tokens = default_output_tokens
        self._instance_id = instance_id
        self._timeout_s, self._retry_after_s = timeout_s, retry_after_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tollkeeper-admit")

    async def admit(self, **request: Any) -> None:
        """``admit_request`` with this gateway's engine and instance; raises LimitExceeded
        or LimitsUnavailable."""
        call = partial(
            admit_request,
            engine=self._engine,
            instance_id=self._instance_id,
            default_output_tokens=self._default_output_tokens,
            **request,
        )
        future = self._pool.submit(call)
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self._timeout_s)
        except TimeoutError:
            future.add_done_callback(partial(self._release_late, request["request_id"]))
            log.warning("tollkeeper: limits database did not answer in %.1f s", self._timeout_s)
            raise self._unavailable() from None
        except SQLAlchemyError as e:
            log.warning("tollkeeper: limits database unavailable (%s)", describe_error(e))
            raise self._unavailable() from None

    def _unavailable(self) -> LimitsUnavailable:
        return LimitsUnavailable(
            "The gateway cannot check this key's limits right now; retry shortly.",
            retry_after_s=self._retry_after_s,
        )

    def _release_late(self, request_id: str, future: Future[None]) -> None:
        """Once an admission the client no longer waits for has reserved after all."""
        if future.cancelled() or future.exception() is not None:
            return
        with contextlib.suppress(RuntimeError):  # shut down: the reservation expires instead
            self._pool.submit(self._release, request_id)

    def _release(self, request_id: str) -> None:
        try:
            with Session(self._engine) as session:
                release(session, request_id)
        except SQLAlchemyError as e:  # it expires with its ttl
            log.warning("tollkeeper: could not release a late reservation (%s)", describe_error(e))

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
