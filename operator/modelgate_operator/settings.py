"""kopf settings for running the operator in production (and in tests, with the same code).

- Persistence under our own prefix: the finalizer ``serving.modelgate.io/finalizer`` and the delete handler's
  progress in ``serving.modelgate.io/*`` annotations; no diff-base (see :class:`NoDiffBaseStorage`). kopf
  never writes ``status``: the reconciler owns it.
- Watches with both a server-side and a client-side timeout, so a stream silently stalled behind a load
  balancer is re-established.
- kopf's own Events are off: the reconciler records Events on Ready transitions itself, with messages it
  controls (never a credential).
- Peering: with ``--peering NAME`` the KopfPeering (namespaced mode) or ClusterKopfPeering (cluster-wide)
  object ``NAME`` must exist and only the highest-priority replica handles events; without it the operator
  runs standalone (run a single replica).
- Logs: JSON lines by default, with a filter that blanks any ``*Plaintext`` value should kopf's debug output
  print an object body.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import kopf

PREFIX = "serving.modelgate.io"
FINALIZER = f"{PREFIX}/finalizer"


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    namespaces: tuple[str, ...] = ()
    clusterwide: bool = False
    peering: str | None = None
    liveness: str | None = None
    server_timeout: int = 300
    client_timeout: float = 330.0
    connect_timeout: float = 10.0
    request_timeout: float = 30.0
    workers: int | None = None


def operator_settings(options: RuntimeOptions) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = NoDiffBaseStorage()
    settings.posting.enabled = False
    # No cluster-wide list/watch of CRDs and namespaces (least privilege): the served resources are those
    # present at startup (install the CRD before starting the operator).
    settings.scanning.disabled = True
    settings.watching.server_timeout = options.server_timeout
    settings.watching.client_timeout = options.client_timeout
    settings.watching.connect_timeout = options.connect_timeout
    settings.networking.request_timeout = options.request_timeout
    settings.networking.connect_timeout = options.connect_timeout
    settings.networking.error_backoffs = [1, 2, 5, 10]
    settings.execution.max_workers = 4
    if options.workers is not None:
        settings.queueing.worker_limit = options.workers
    if options.peering is None:
        settings.peering.standalone = True
    else:
        settings.peering.name = options.peering
        settings.peering.mandatory = True
        settings.peering.clusterwide = options.clusterwide
    return settings


class NoDiffBaseStorage(kopf.DiffBaseStorage):
    """The operator has no create/update handlers (it is level-triggered and tracks generations itself), so
    kopf needs no diff-base: none is stored (no annotation PATCH per endpoint) and none is built (kopf would
    deep-copy every event's body, managedFields included, to build one)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return kopf.BodyEssence()

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


_PLAINTEXT_VALUE = re.compile(r"""(['"]\w*Plaintext['"]\s*:\s*)(['"])(?:\\.|(?!\2).)*\2""")
_SECRET_DATA = re.compile(r"""(['"](?:data|stringData)['"]\s*:\s*)\{[^{}]*\}""")


class RedactingFilter(logging.Filter):
    """Blank ``*Plaintext`` values (and Secret ``data`` maps) in a record before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Plaintext" in message or "data" in message:
            redacted = _SECRET_DATA.sub(r"\1{...}", _PLAINTEXT_VALUE.sub(r"\1'***'", message))
            if redacted != message:
                record.msg, record.args = redacted, None
        return True


class QuietWatchFilter(logging.Filter):
    """Drop kopf's per-event success lines for the Secret/Deployment watches (one per Secret in scope)."""

    NOISE = frozenset(
        f"Handler '{name}-changed' succeeded."
        for name in ("endpoint", "secret", "deployment", "configmap", "service")
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or record.getMessage() not in self.NOISE


QUIET_LOGGERS = ("httpx2", "httpcore2", "httpx", "httpcore")
"""HTTP client packages whose DEBUG/INFO lines would log every request: lightkube's transport is httpx2 on
httpcore2 (the older httpx/httpcore names are kept for libraries that still use them)."""


def configure_logging(*, json: bool = True, verbose: bool = False, debug: bool = False) -> None:
    kopf.configure(
        debug=debug,
        verbose=verbose,
        log_format=kopf.LogFormat.JSON if json else kopf.LogFormat.FULL,
        log_refkey="object",
    )
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
            handler.addFilter(QuietWatchFilter())
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)

