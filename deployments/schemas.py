"""Request and response bodies of the HTTP API (they also make the OpenAPI docs at /docs)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ensemble.vote import VOTINGS

Text = Annotated[str, Field(min_length=1)]


class PredictRequest(BaseModel):
    """Exactly one of `input` / `inputs`; the schema says so with `oneOf` and no field is nullable,
    so what the OpenAPI document accepts is what the server accepts (limits aside: see `Error`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "oneOf": [{"required": ["input"]}, {"required": ["inputs"]}],
        "examples": [{"task": "mrpc", "inputs": ["sentence1: A cat sat. sentence2: A cat was sitting."]}]})

    task: Text = Field(description="a task with prompts loaded (see GET /v1/tasks)")
    inputs: list[Text] = Field(None, min_length=1, description="input texts, in the task's text-to-text format")
    input: Text = Field(None, description="one input text (instead of `inputs`)")
    voting: Literal[VOTINGS] = Field(
        None, description="how the N prompts' answers combine (paper §6); default: the server's")

    @model_validator(mode="after")
    def _one_of(self):
        if (self.inputs is None) == (self.input is None):
            raise ValueError("give exactly one of 'input' (a string) or 'inputs' (a list of strings)")
        return self

    @classmethod
    def openapi_schema(cls) -> dict:
        """The JSON schema without `default: null` on fields that may be absent but never null."""
        schema = cls.model_json_schema(ref_template="#/components/schemas/{model}")
        for prop in schema["properties"].values():
            if prop.get("default", 0) is None:
                del prop["default"]
        return schema

    def texts(self) -> list[str]:
        return self.inputs if self.inputs is not None else [self.input]


class PredictionOut(BaseModel):
    prediction: str
    votes: dict[str, int]
    agreement: float = Field(description="share of the prompts that gave the prediction")
    answers: list[str] = Field(description="each prompt's answer, in the order of `prompts`")
    prompts: list[str]


class PredictResponse(BaseModel):
    task: str
    backbone: str
    predictions: list[PredictionOut]


class TaskInfo(BaseModel):
    n_prompts: int
    prompt_length: int
    kind: str
    labels: list[str]
    prompts: list[str]


class TasksResponse(BaseModel):
    backbone: str
    fingerprint: str
    registry: str
    version: int = Field(description="changes whenever the set of served prompts does")
    tasks: dict[str, TaskInfo]
    refused: dict[str, str] = Field(description="prompt files not served, with the reason")


class ReloadResponse(BaseModel):
    added: list[str]
    removed: list[str]
    refused: dict[str, str]
    version: int


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    tasks: int
    problems: list[str] = Field(default_factory=list, description="why the status is degraded")


class Error(BaseModel):
    detail: str = Field(description="what was wrong, quoting at most ~100 characters of the request")
