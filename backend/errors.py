"""Domain errors raised below the HTTP layer; `main.py` maps them to 4xx responses.

Raising these (not HTTPException) keeps storage, formats and QA usable from the CLI and worker.
"""
from __future__ import annotations


class StudioError(Exception):
    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(StudioError):
    """Untrusted input is malformed: a bad image, a bad annotation file, a bad field."""

    status_code = 422


class TooLarge(StudioError):
    status_code = 413


class NotFound(StudioError):
    status_code = 404


class Conflict(StudioError):
    status_code = 409
