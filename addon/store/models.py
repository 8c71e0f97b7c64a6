"""SQLModel tables. All times are timezone-aware and stored in UTC.

Token convention for ``usage_records`` (the same for every provider):

- ``input_tokens``: every prompt token, *including* cache reads and cache writes
  (OpenAI reports it this way; for Anthropic it is ``input + cache_creation + cache_read``).
- ``cached_input_tokens``: cache reads, a subset of ``input_tokens``.
- ``cache_write_tokens``: cache writes, a subset of ``input_tokens``.
- ``output_tokens``: every generated token *including* reasoning (Gemini thoughts are added).
- ``reasoning_tokens``: reasoning/thinking tokens, a subset of ``output_tokens``.

Money is integer picodollars (1e-12 USD): exact for prices with up to six decimals per
million tokens. ``cost_picousd`` is NULL when the model has no known price.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from addon.moments import utcnow as utcnow  # the tables' default; imported from here too


class VirtualKey(SQLModel, table=True):
    __tablename__ = "virtual_keys"

    id: str = Field(primary_key=True, max_length=16)
    project: str = Field(index=True, max_length=200)
    secret_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str = Field(default="", max_length=200)
    updated_at: datetime = Field(default_factory=utcnow, index=True)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = Field(default=None, max_length=200)
    revoke_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    allowed_providers: str = Field(default="", max_length=1000)  # comma-separated, "" = any
    allowed_models: str = Field(default="", max_length=2000)  # comma-separated globs
    budget_picousd: int | None = Field(default=None, sa_column=Column(BigInteger))
    budget_period: str = Field(default="total", max_length=16)
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    # a key with a budget or TPM limit reaches only metered endpoints unless this is set
    allow_unmetered: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # budget alert thresholds in percent of the budget, comma-separated ("" = none)
    alert_at: str = Field(default="", max_length=200, sa_column_kwargs={"server_default": ""})
    metadata_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))


class RealKey(SQLModel, table=True):
    __tablename__ = "real_keys"
    __table_args__ = (UniqueConstraint("provider", "label"),)

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(index=True, max_length=64)
    label: str = Field(max_length=200)
    base_url: str | None = Field(default=None, max_length=2000)
    ciphertext: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    env_ref: str | None = Field(default=None, max_length=200)
    last4: str = Field(max_length=8)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    status: str = Field(default="healthy", max_length=16)  # healthy | cooling | disabled
    cooldown_until: datetime | None = None
    consecutive_auth_failures: int = 0
    last_error: str | None = Field(default=None, max_length=200)
    # Azure: deployment name -> model, for pricing when a response does not name the model
    model_map_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))


class CustomProvider(SQLModel, table=True):
    """An operator-defined OpenAI- or Anthropic-compatible provider (vLLM, Ollama, ...)."""

    __tablename__ = "custom_providers"

    name: str = Field(primary_key=True, max_length=64)
    base_url: str = Field(max_length=2000)
    hosts: str = Field(default="", max_length=2000)  # comma-separated extra hosts
    auth: str = Field(default="bearer", max_length=32)  # bearer | x-api-key | api-key
    wire_format: str = Field(default="openai", max_length=16)  # openai | anthropic
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class UsageRecord(SQLModel, table=True):
    __tablename__ = "usage_records"
    __table_args__ = (
        Index("ix_usage_time", "created_at"),
        Index("ix_usage_key_time", "virtual_key_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    virtual_key_id: str | None = Field(default=None, max_length=16)
    project: str | None = Field(default=None, max_length=200)
    provider: str = Field(max_length=64)
    real_key_label: str | None = Field(default=None, max_length=200)
    endpoint: str = Field(default="", max_length=200)
    model: str | None = Field(default=None, max_length=200)
    status_code: int | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_picousd: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    latency_ms: int | None = None
    ttfb_ms: int | None = None
    streamed: bool = False
    estimated: bool = False
    error_kind: str | None = Field(default=None, max_length=64)
    provider_request_id: str | None = Field(default=None, max_length=200)
    extras_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    # addon.attribution: the end user and the tags ("a,b", "" for none) a client named
    end_user: str | None = Field(default=None, max_length=128)
    tags: str = Field(default="", max_length=700, sa_column_kwargs={"server_default": ""})


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=64)
    target: str = Field(max_length=300)
    details_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))


class PriceOverride(SQLModel, table=True):
    __tablename__ = "price_overrides"

    model: str = Field(primary_key=True, max_length=200)
    prices_json: str = Field(sa_column=Column(Text, nullable=False))  # decimal strings per Mtok
    updated_at: datetime = Field(default_factory=utcnow)


class InflightRequest(SQLModel, table=True):
    """An admitted request of a limited key, until its usage record is written."""

    __tablename__ = "inflight_requests"

    request_id: str = Field(primary_key=True, max_length=64)
    virtual_key_id: str = Field(index=True, max_length=16)
    started_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    reserved_picousd: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    reserved_tokens: int = 0
    instance_id: str | None = Field(default=None, index=True, max_length=32)  # who admitted it


class GatewayInstance(SQLModel, table=True):
    """A running gateway process; its in-flight reservations die with it."""

    __tablename__ = "gateway_instances"

    id: str = Field(primary_key=True, max_length=32)
    host: str = Field(max_length=255)
    pid: int
    started_at: datetime = Field(default_factory=utcnow)
    seen_at: datetime = Field(default_factory=utcnow)  # heartbeat


class KeyDailySpend(SQLModel, table=True):
    """Settled spend per key and UTC day (budgets sum the days of their period)."""

    __tablename__ = "key_daily_spend"

    virtual_key_id: str = Field(primary_key=True, max_length=16)
    day: str = Field(primary_key=True, max_length=10)  # YYYY-MM-DD, UTC
    spent_picousd: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    requests: int = 0


class KeyMinuteUsage(SQLModel, table=True):
    """Requests admitted and tokens metered per key and UTC minute (RPM and TPM)."""

    __tablename__ = "key_minute_usage"

    virtual_key_id: str = Field(primary_key=True, max_length=16)
    minute: int = Field(primary_key=True)  # minutes since the epoch
    requests: int = 0
    tokens: int = 0


class BudgetAlert(SQLModel, table=True):
    """A budget alert that fired: one row per key, period and threshold. Its primary key is
    the claim: of several gateways that see the crossing, only the one whose insert wins
    sends the webhook."""

    __tablename__ = "budget_alerts"

    virtual_key_id: str = Field(primary_key=True, max_length=16)
    period_start: str = Field(primary_key=True, max_length=10)  # YYYY-MM-DD, UTC
    threshold_percent: int = Field(primary_key=True)
    fired_at: datetime = Field(default_factory=utcnow)
    spent_picousd: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    budget_picousd: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    instance_id: str = Field(default="", max_length=32)  # the gateway that claimed it
    delivery: str = Field(default="pending", max_length=16)  # pending|sent|failed|no_webhook
    attempts: int = 0
    delivered_at: datetime | None = None
    last_error: str | None = Field(default=None, max_length=200)
