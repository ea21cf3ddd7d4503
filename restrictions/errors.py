"""Domain errors carry the HTTP status the API answers with, and a message for a person."""


class DomainError(Exception):
    status = 422

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def with_status(self, status: int) -> "DomainError":
        """The same error answered with another 4xx (for example 400 for a malformed body)."""
        self.status = status
        return self


class Invalid(DomainError):
    status = 422


class Conflict(DomainError):
    status = 409


class NotFound(DomainError):
    status = 404


class Forbidden(DomainError):
    status = 403
