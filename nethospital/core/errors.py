"""Domain errors: a code, a message in the user's language, and (for input) the field at fault.

Actions raise ``DomainError``; pages turn it into a form error, the JSON API into a 4xx body
``{"error": {"code", "message", "fields"}}``. Each app lists its codes in its own ``errors.py``
as ``ErrorCode`` constants so that every refusal has one stable code and one bilingual message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise


@dataclass(frozen=True)
class ErrorCode:
    code: str
    message: str | Promise
    status: int = 400


class DomainError(Exception):
    """A refusal by a domain rule or an input check. Nothing has been changed when it is raised."""

    def __init__(
        self,
        error: ErrorCode,
        *,
        field: str | None = None,
        fields: dict[str, list[str]] | None = None,
        **params: Any,
    ) -> None:
        self.error = error
        self.field = field
        self.params = params
        self.extra_fields = fields or {}
        super().__init__(error.code)

    @property
    def code(self) -> str:
        return self.error.code

    @property
    def status(self) -> int:
        return self.error.status

    @property
    def message(self) -> str:
        text = str(self.error.message)
        return text % self.params if self.params else text

    def field_errors(self) -> dict[str, list[str]]:
        fields = {name: [str(m) for m in messages] for name, messages in self.extra_fields.items()}
        if self.field:
            fields.setdefault(self.field, []).append(self.message)
        return fields

    def as_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "fields": self.field_errors()}}


class NotFound(DomainError):
    pass


class PermissionDenied(DomainError):
    pass


def ensure(condition: object, error: ErrorCode, *, field: str | None = None, **params: Any) -> None:
    """Raise ``DomainError(error)`` unless ``condition`` holds."""
    if not condition:
        exc_class: type[DomainError] = DomainError
        if error.status == 403:
            exc_class = PermissionDenied
        elif error.status == 404:
            exc_class = NotFound
        raise exc_class(error, field=field, **params)


# Platform-wide codes (apps add their own in their errors.py).
from django.utils.translation import gettext_lazy as _  # noqa: E402

NOT_FOUND = ErrorCode("not_found", _("Not found."), 404)
PERMISSION_DENIED = ErrorCode("permission_denied", _("You do not have permission to do this."), 403)
LOGIN_REQUIRED = ErrorCode("login_required", _("Please log in first."), 401)
MFA_REQUIRED = ErrorCode(
    "mfa_required",
    _("Your role requires two-factor authentication. Set it up or verify it before opening patient data."),
    403,
)
INVALID_INPUT = ErrorCode("invalid_input", _("Some fields are not valid."), 422)
CONFLICT = ErrorCode("conflict", _("This conflicts with existing data."), 409)
REQUEST_TOO_LARGE = ErrorCode(
    "request_too_large", _("The request is larger than the %(limit)s bytes the server accepts."), 413
)
BAD_REQUEST = ErrorCode("bad_request", _("The request could not be read."), 400)
RATE_LIMITED = ErrorCode("rate_limited", _("Too many requests. Please try again in %(retry_after)s seconds."), 429)
