"""What params.yaml's sections (faqforge.core.sections) are built from: a frozen
model that refuses unknown keys, a YAML number kept as written, and how an
OpenAI-compatible endpoint is reached (the teacher's transport, and the part a
served evaluation endpoint shares)."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Number = int | float   # a YAML number kept as written (120 stays 120, 1.0 stays 1.0)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Transport(Section):
    """How an OpenAI-compatible endpoint is reached: the teacher's keys, and the part of
    them a served evaluation endpoint has (faqforge.models.openai_client takes this)."""
    base_url: str | list[str] | None = "http://127.0.0.1:8000/v1"
    api_key_env: str | None = "OPENAI_API_KEY"
    concurrency: Annotated[int, Field(ge=1)] | Literal["auto"] = "auto"
    max_concurrency: int = Field(256, ge=1)
    timeout: Number = Field(120, gt=0)
    max_retries: int = Field(5, ge=0)
    backoff_seconds: Number = Field(1.0, ge=0)
    max_backoff_seconds: Number = Field(60, ge=0)
    requests_per_minute: Number | None = Field(None, gt=0)
    tokens_per_minute: Number | None = Field(None, gt=0)
    insecure_http: bool = False
