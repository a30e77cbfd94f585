"""What a request must pass before it may join a batch: size, JSON, schema, Unicode and token limits.

Everything here raises `ClientError(status, message)`, which the app answers as a 4xx with a short
message. Messages quote at most `QUOTE` characters of what the client sent, escaped so that any
string (lone surrogates included) can be written back as JSON. Items are checked one by one here,
before batching, so a bad item is refused alone instead of failing the pass it would share.
"""

from __future__ import annotations

import json
from typing import AsyncIterator, Callable

from pydantic import ValidationError

from .schemas import PredictRequest

QUOTE = 100


class ClientError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def clip(value, limit: int = QUOTE) -> str:
    """`value` as printable, JSON-safe text of at most ~`limit` characters."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


async def read_body(content_length: str | None, chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The body, refused with 413 once it passes `limit` bytes (before any of it is parsed)."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise ClientError(400, f"Content-Length {clip(content_length, 20)!r} is not a number") from None
        if declared > limit:
            raise ClientError(413, f"body of {declared} bytes; the limit is {limit}: split the request")
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise ClientError(413, f"body over the {limit}-byte limit: split the request")
    return bytes(body)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes):
    """Strict JSON: no NaN/Infinity, valid UTF-8, bounded nesting (Python's parser raises RecursionError)."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as e:
        raise ClientError(400, f"body is not UTF-8 ({e.reason} at byte {e.start})") from None
    except RecursionError:
        raise ClientError(400, "body is nested too deeply") from None
    except ValueError as e:
        raise ClientError(400, f"body is not valid JSON: {clip(str(e))}") from None


def _describe(error: dict) -> str:
    where = ".".join(clip(part, 40) for part in error.get("loc", ())) or "body"
    return f"{where}: {clip(error.get('msg', 'invalid'))}"


def parse_predict(data) -> PredictRequest:
    if not isinstance(data, dict):
        raise ClientError(422, f"body must be a JSON object with 'task' and 'input' or 'inputs', not {type(data).__name__}")
    try:
        request = PredictRequest.model_validate(data)
    except ValidationError as e:
        errors = e.errors(include_input=False, include_url=False)
        shown = "; ".join(_describe(err) for err in errors[:5])
        raise ClientError(422, shown + (f"; and {len(errors) - 5} more" if len(errors) > 5 else "")) from None
    for k, text in enumerate([request.task, *request.texts()]):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            where = "task" if k == 0 else f"input {k - 1}"
            raise ClientError(422, f"{where} is not valid Unicode (it holds a lone surrogate, e.g. '\\ud800')") from None
    return request


def check_limits(texts: list[str], count_tokens: Callable[[str], int], max_inputs: int, max_input_chars: int,
                 max_input_tokens: int, max_request_tokens: int) -> None:
    """Inputs per request, then characters (cheap, before tokenising), then tokens per input and in all."""
    if len(texts) > max_inputs:
        raise ClientError(422, f"{len(texts)} inputs in one request; the limit is {max_inputs}: split the request")
    for k, text in enumerate(texts):
        if len(text) > max_input_chars:
            raise ClientError(422, f"input {k} has {len(text)} characters; the limit is {max_input_chars}")
    total = 0
    for k, text in enumerate(texts):
        n = count_tokens(text)
        if n > max_input_tokens:
            raise ClientError(422, f"input {k} has {n} tokens; the limit is {max_input_tokens}")
        total += n
    if total > max_request_tokens:
        raise ClientError(422, f"{total} tokens in one request; the limit is {max_request_tokens}: split the request")
