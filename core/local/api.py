"""The OpenAI API's rules as the local backend answers them: errors in OpenAI's shape, the
supported endpoint and window, file purposes, expiry policies, metadata and list pages.

Everything here checks or shapes what a client sent; nothing touches the state directory.
"""

from __future__ import annotations

from typing import Any

from core.errors import CoreError

SUPPORTED_ENDPOINT = "/v1/chat/completions"
SUPPORTED_WINDOWS = ("24h",)
FILE_PURPOSES = frozenset({"batch", "user_data", "assistants", "fine-tune", "vision", "evals"})
# OpenAI's file expiry policy (``expires_after`` on files.create, ``output_expires_after`` on
# batches.create): ``{"anchor": "created_at", "seconds": N}`` with N from one hour to 30 days;
# files with purpose=batch expire after 30 days unless told otherwise, others never.
EXPIRY_ANCHOR = "created_at"
MIN_EXPIRY_SECONDS = 3_600
MAX_EXPIRY_SECONDS = 2_592_000
BATCH_FILE_EXPIRY_SECONDS = MAX_EXPIRY_SECONDS
LIST_ORDERS = ("asc", "desc")


class ApiError(CoreError):
    """An HTTP-level error in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type_

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def check_batch_params(params: Any) -> tuple[str, str, str, Any, int | None]:
    """(input_file_id, endpoint, completion_window, metadata, output expiry seconds) of a
    batches.create body, or the 400 OpenAI answers for the first thing wrong in it."""
    if not isinstance(params, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    input_file_id = params.get("input_file_id")
    endpoint = params.get("endpoint")
    window = params.get("completion_window")
    metadata = params.get("metadata")
    for name, value in (("input_file_id", input_file_id), ("endpoint", endpoint), ("completion_window", window)):
        if not isinstance(value, str) or not value:
            raise ApiError(400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
    if endpoint != SUPPORTED_ENDPOINT:
        raise ApiError(
            400,
            f"Invalid value: '{endpoint}'. The local backend supports only '{SUPPORTED_ENDPOINT}'.",
            param="endpoint",
            code="invalid_value",
        )
    if window not in SUPPORTED_WINDOWS:
        raise ApiError(400, f"Invalid value: '{window}'. Supported values are: '24h'.", param="completion_window", code="invalid_value")
    if metadata is not None:
        check_metadata(metadata)
    output_expiry = parse_expiry(params.get("output_expires_after"), "output_expires_after")
    return input_file_id, endpoint, window, metadata, output_expiry


def check_metadata(metadata: Any) -> None:
    """A 400 unless ``metadata`` is at most 16 string keys (64 chars) with string values (512)."""
    if not isinstance(metadata, dict):
        raise ApiError(400, "'metadata' must be an object of string keys and string values.", param="metadata")
    if len(metadata) > 16:
        raise ApiError(400, "'metadata' can have at most 16 keys.", param="metadata")
    for key, value in metadata.items():
        if not isinstance(key, str) or len(key) > 64:
            raise ApiError(400, "Metadata keys must be strings of at most 64 characters.", param="metadata")
        if not isinstance(value, str) or len(value) > 512:
            raise ApiError(400, f"Metadata value of '{key}' must be a string of at most 512 characters.", param="metadata")


def is_expiry(value: Any) -> bool:
    """Whether ``value`` is a lifetime in seconds that an expiry policy may ask for."""
    return (isinstance(value, int) and not isinstance(value, bool)
            and MIN_EXPIRY_SECONDS <= value <= MAX_EXPIRY_SECONDS)


def parse_expiry(value: Any, param: str) -> int | None:
    """The lifetime in seconds that an OpenAI expiry policy (``{"anchor": "created_at",
    "seconds": N}``, N from 3600 to 2592000) asks for; None when no policy is given. A
    malformed policy is a 400 naming the parameter, as OpenAI answers."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ApiError(400, f"Invalid type for '{param}': expected an object with 'anchor' and 'seconds'.",
                       param=param, code="invalid_type")
    anchor = value.get("anchor")
    if anchor != EXPIRY_ANCHOR:
        raise ApiError(400, f"Invalid value for '{param}.anchor': {str(anchor)[:40]!r}. Supported values are: "
                       f"'{EXPIRY_ANCHOR}'.", param=f"{param}.anchor", code="invalid_value")
    seconds = value.get("seconds")
    if isinstance(seconds, str) and seconds.strip().isdigit():  # a multipart form field is text
        seconds = int(seconds.strip())
    if not is_expiry(seconds):
        raise ApiError(400, f"Invalid value for '{param}.seconds': must be an integer between "
                       f"{MIN_EXPIRY_SECONDS} (1 hour) and {MAX_EXPIRY_SECONDS} (30 days).",
                       param=f"{param}.seconds", code="invalid_value")
    return seconds


def descending(order: str | None) -> bool:
    """``order`` of a list request: ``desc`` (the default, newest first) or ``asc``."""
    if order in (None, ""):
        return True
    if order not in LIST_ORDERS:
        raise ApiError(400, f"Invalid value for 'order': {str(order)[:40]!r}. Supported values are: 'asc' and 'desc'.",
                       param="order", code="invalid_value")
    return order == "desc"


def page(objs: list[dict[str, Any]], *, limit: int, after: str | None, max_limit: int) -> dict[str, Any]:
    """One page of a list answer: up to ``limit`` objects after the one with id ``after``."""
    if not 1 <= limit <= max_limit:
        raise ApiError(400, f"Invalid 'limit': must be between 1 and {max_limit}.", param="limit", code="invalid_value")
    if after:
        ids = [o["id"] for o in objs]
        if after not in ids:
            raise ApiError(400, f"Invalid 'after': no object with id '{after}'.", param="after", code="invalid_value")
        objs = objs[ids.index(after) + 1 :]
    data = objs[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(objs) > limit,
    }
