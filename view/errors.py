"""The API's errors: a status and one line saying what is wrong and the fix (``{"error": line}``)."""

from __future__ import annotations


class ApiError(Exception):
    """A request the API refuses: ``status`` (404 unknown run or episode, 400 bad parameter) and one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)
