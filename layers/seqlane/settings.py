"""Configuration from environment variables, validated when a handler starts handling an event (never at import)."""

from __future__ import annotations

import os
import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")


class ConfigurationError(RuntimeError):
    """An environment variable is missing or invalid: the deployment is wrong, not the event."""


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    region: str = Field(alias="SEQLANE_REGION")
    catalog_table: str = Field(alias="CATALOG_TABLE", min_length=3)
    results_bucket: str = Field(alias="RESULTS_BUCKET", min_length=3)

    @field_validator("region")
    @classmethod
    def _region_format(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError(f"{value!r} is not an AWS region name")
        return value

    @classmethod
    def from_env(cls, environ=None):
        try:
            return cls.model_validate(dict(os.environ if environ is None else environ))
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise ConfigurationError(f"{cls.__name__} environment is invalid: {problems}") from None


class IngestSettings(_Settings):
    ingest_bucket: str = Field(alias="INGEST_BUCKET", min_length=3)
    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN", pattern=r"^arn:aws[a-z-]*:states:")
    dragen_version: str = Field(alias="DRAGEN_VERSION", min_length=1)
    reference_uri: str = Field(alias="REFERENCE_URI", pattern=r"^s3://[^/]+/.+")
    modality: str = Field(default="germline-wgs", alias="SEQLANE_DEFAULT_MODALITY")
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    # Its own queue: closing a run and reading a sheet are split into messages of bounded work sent there.
    ingest_queue_url: str = Field(alias="INGEST_QUEUE_URL", pattern=r"^https?://\S+/\d+/\S+$")

    @field_validator("state_machine_arn")
    @classmethod
    def _state_machine_in_region(cls, value: str, info) -> str:
        region = info.data.get("region")
        if region and value.split(":")[3] != region:
            raise ValueError(f"state machine {value} is not in this stack's region {region}")
        return value


class CatalogSettings(_Settings):
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=3)
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
