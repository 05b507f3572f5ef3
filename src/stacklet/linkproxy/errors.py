"""API errors: a message and the HTTP status the Toxiproxy API uses for it."""

from __future__ import annotations


class ApiError(Exception):
    """An error the HTTP API reports as ``{"error": message, "status": status}``."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def to_json(self) -> dict:
        """The error body of the Toxiproxy API."""
        return {"error": self.message, "status": self.status}


def bad_request(detail: str) -> ApiError:
    """A 400 with Toxiproxy's ``bad request body`` prefix."""
    return ApiError(f"bad request body: {detail}", 400)


def missing_field(field: str) -> ApiError:
    """A 400 for a required field that is absent or empty."""
    return ApiError(f"missing required field: {field}", 400)


PROXY_NOT_FOUND = ApiError("proxy not found", 404)
PROXY_EXISTS = ApiError("proxy already exists", 409)
TOXIC_NOT_FOUND = ApiError("toxic not found", 404)
TOXIC_EXISTS = ApiError("toxic already exists", 409)
INVALID_STREAM = ApiError("stream was invalid, can be either upstream or downstream", 400)
INVALID_TOXIC_TYPE = ApiError("invalid toxic type", 400)


def os_reason(exc: OSError) -> str:
    """The OS error text in Go's style: "address already in use"."""
    reason = exc.strerror or str(exc)
    return reason[:1].lower() + reason[1:]
