"""Which failures of the operator are worth retrying: the one place they become kopf's errors.

- **Temporary** (``kopf.TemporaryError``: retried with a delay): the API server unreachable or timing out
  (code 0, 408, 504), busy (429, 5xx), a conflict (409: someone else wrote first; the next attempt re-reads),
  401/403 (a rotated token or RBAC being fixed heals without a spec change), and anything unforeseen (kopf's own default: an error of ours must not stop retries for good).
- **Permanent** (``kopf.PermanentError``: not retried until the object changes): the spec itself cannot be
  read (pydantic ``ValidationError``), or the API server rejected what the spec renders to (400, 404 of a
  namespace being deleted, 405, 413, 415, 422): the same input gives the same answer.

:func:`kopf_error` is used by the delete handler (kopf retries it), :func:`is_permanent` by the reconciler's own
retries of event-triggered reconciles (kopf event handlers are not retried by kopf). Messages are the
exceptions' own, which never carry a Secret's content (see :mod:`.kube`).
"""

from __future__ import annotations

import kopf
from pydantic import ValidationError

from .kube import KubeError

PERMANENT_CODES = frozenset({400, 404, 405, 413, 415, 422})
CONFLICT_DELAY = 1.0
"""Seconds before retrying a conflict (409): the next attempt re-reads and is expected to win."""
BUSY_DELAY = 10.0
"""Seconds before retrying when the API server says it is busy (429) or failing (5xx), or is unreachable."""
DEFAULT_DELAY = 5.0


def is_permanent(exc: BaseException) -> bool:
    """True when retrying with the same input cannot succeed."""
    if isinstance(exc, kopf.PermanentError | ValidationError):
        return True
    return isinstance(exc, KubeError) and exc.code in PERMANENT_CODES


def retry_delay(exc: BaseException) -> float:
    """Seconds to wait before retrying a temporary failure."""
    if isinstance(exc, KubeError):
        if exc.code == 409:
            return CONFLICT_DELAY
        if exc.code in (0, 408, 429) or exc.code >= 500:
            return BUSY_DELAY
    return DEFAULT_DELAY


def kopf_error(exc: BaseException) -> kopf.TemporaryError | kopf.PermanentError:
    """``exc`` as the kopf error that says whether to retry."""
    if isinstance(exc, kopf.TemporaryError | kopf.PermanentError):
        return exc
    if is_permanent(exc):
        return kopf.PermanentError(f"not retried until the endpoint changes: {exc}")
    return kopf.TemporaryError(str(exc) or type(exc).__name__, delay=retry_delay(exc))
