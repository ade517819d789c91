"""Kubernetes API errors as values that know their metav1.Status.

Every failure that reaches a client is a `StatusError`; the API server turns it into a
metav1.Status body with the same code, reason and causes Kubernetes would send. Helpers
below mirror k8s.io/apimachinery/pkg/api/errors so messages read the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Cause:
    """One field error, as metav1.StatusCause."""

    type: str  # FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, FieldValueDuplicate, ...
    message: str
    field: str = ""

    def to_dict(self) -> dict[str, str]:
        d = {"reason": self.type, "message": self.message}
        if self.field:
            d["field"] = self.field
        return d


# Cause type constants (metav1.CauseType) and the human phrase Kubernetes prints for each.
INVALID = "FieldValueInvalid"
REQUIRED = "FieldValueRequired"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_MANY = "FieldValueTooMany"
TOO_LONG = "FieldValueTooLong"
UNKNOWN_FIELD = "FieldValueUnknownField"  # not a real k8s cause type; strict decoding uses "UnknownField"


def invalid_value(path: str, value: Any, detail: str) -> Cause:
    return Cause(INVALID, f"Invalid value: {_render(value)}: {detail}", path)


def required(path: str, detail: str = "") -> Cause:
    return Cause(REQUIRED, "Required value" + (f": {detail}" if detail else ""), path)


def not_supported(path: str, value: Any, supported: list[str]) -> Cause:
    valid = ", ".join(f'"{s}"' for s in supported)
    return Cause(NOT_SUPPORTED, f"Unsupported value: {_render(value)}: supported values: {valid}", path)


def duplicate(path: str, value: Any) -> Cause:
    return Cause(DUPLICATE, f"Duplicate value: {_render(value)}", path)


def forbidden(path: str, detail: str) -> Cause:
    return Cause(FORBIDDEN, f"Forbidden: {detail}", path)


def too_many(path: str, actual: int, limit: int) -> Cause:
    return Cause(TOO_MANY, f"Too many: {actual}: must have at most {limit} items", path)


def too_long(path: str, limit: int) -> Cause:
    return Cause(TOO_LONG, f"Too long: may not be more than {limit} bytes", path)


def _render(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(eq=False)
class StatusError(Exception):
    """An error with an HTTP code and a metav1.Status reason."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] | None = None
    causes: list[Cause] = field(default_factory=list)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details = dict(self.details or {})
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if details:
            status["details"] = details
        return status


def _details(resource: str, name: str, group: str = "") -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        d["group"] = group
    return d


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        404, "NotFound", f'{_qualified(resource, group)} "{name}" not found', _details(resource, name, group)
    )


def already_exists(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        409,
        "AlreadyExists",
        f'{_qualified(resource, group)} "{name}" already exists',
        _details(resource, name, group),
    )


def conflict(resource: str, name: str, detail: str, group: str = "") -> StatusError:
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {detail}',
        _details(resource, name, group),
    )


STALE_OBJECT = "the object has been modified; please apply your changes to the latest version and try again"


def invalid(kind: str, name: str, causes: list[Cause], group: str = "") -> StatusError:
    """422 Invalid, with the message format of apierrors.NewInvalid."""
    qualified = f"{kind}.{group}" if group else kind
    if not causes:
        msg = f'{qualified} "{name}" is invalid'
    elif len(causes) == 1:
        msg = f'{qualified} "{name}" is invalid: {_cause_text(causes[0])}'
    else:
        msg = f'{qualified} "{name}" is invalid: [{", ".join(_cause_text(c) for c in causes)}]'
    details = {"name": name, "kind": kind}
    if group:
        details["group"] = group
    return StatusError(422, "Invalid", msg, details, list(causes))


def _cause_text(c: Cause) -> str:
    return f"{c.field}: {c.message}" if c.field else c.message


def bad_request(message: str, causes: list[Cause] | None = None) -> StatusError:
    return StatusError(400, "BadRequest", message, None, list(causes or []))


def gone(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def too_large(message: str = "Request entity too large") -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", message)


def method_not_allowed(message: str) -> StatusError:
    return StatusError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {content_type!r})")


def not_acceptable(message: str) -> StatusError:
    return StatusError(406, "NotAcceptable", message)


def forbidden_error(resource: str, name: str, message: str, group: str = "") -> StatusError:
    return StatusError(403, "Forbidden", message, _details(resource, name, group))


def internal(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}")


def unavailable(message: str) -> StatusError:
    return StatusError(503, "ServiceUnavailable", message)


def timeout(message: str) -> StatusError:
    return StatusError(504, "Timeout", message)
