"""Errors of the domain, each with a stable machine-readable code.

::

    HubbubError                      (code, http status)
    ├── InvalidInput     bad_request    400
    │   ├── TooLong      too_long       400
    │   └── InvalidName  invalid_name   400
    ├── Unauthorized     unauthorized   401
    ├── Forbidden        forbidden      403
    │   ├── NotMember    not_member     403
    │   └── RegistrationClosed registration_closed 403
    ├── NotFound         not_found      404
    ├── Conflict         conflict       409
    │   └── NameTaken    name_taken     409
    └── RateLimited      rate_limited   429

The web layer renders every one of these the same way (JSON with ``code`` and
``message``); the WebSocket session turns them into error frames.
"""

from __future__ import annotations


class HubbubError(Exception):
    code = "error"
    status = 500

    def __init__(self, message: str = "", **details: object) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        self.details = details


class InvalidInput(HubbubError):
    code = "bad_request"
    status = 400


class TooLong(InvalidInput):
    code = "too_long"


class InvalidName(InvalidInput):
    code = "invalid_name"


class Unauthorized(HubbubError):
    code = "unauthorized"
    status = 401


class Forbidden(HubbubError):
    code = "forbidden"
    status = 403


class NotMember(Forbidden):
    code = "not_member"


class RegistrationClosed(Forbidden):
    code = "registration_closed"


class NotFound(HubbubError):
    code = "not_found"
    status = 404


class Conflict(HubbubError):
    code = "conflict"
    status = 409


class NameTaken(Conflict):
    code = "name_taken"


class RateLimited(HubbubError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str = "", retry_after: float = 1.0) -> None:
        super().__init__(message or "too many requests, slow down", retry_after=retry_after)
        self.retry_after = retry_after
