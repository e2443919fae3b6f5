"""Where the Redis counter backend (:mod:`.redis_counters`) connects, checked before anything is started; kept
apart from it so that configuring the proxy does not import the Redis client."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_TIMEOUT = 0.5
DEFAULT_PREFIX = "modelgate"


class RedisConfigError(ValueError):
    """The Redis settings cannot work (the message says why, never with a password)."""


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str
    password_file: str | None = None
    prefix: str = DEFAULT_PREFIX
    timeout: float = DEFAULT_TIMEOUT

    def check(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("redis", "rediss"):
            raise RedisConfigError("the Redis URL must start with redis:// or rediss:// (TLS)")
        if parts.password:
            raise RedisConfigError("the Redis URL must not contain a password: put it in a file "
                                   "(--rate-limit-redis-password-file, e.g. a mounted Secret)")
        if not parts.hostname:
            raise RedisConfigError("the Redis URL names no host")
        if self.password_file is not None and not Path(self.password_file).is_file():
            raise RedisConfigError(f"the Redis password file {self.password_file} does not exist")
        if not self.timeout > 0:
            raise RedisConfigError("the Redis timeout must be positive")

    @property
    def where(self) -> str:
        """Host and port, for messages."""
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port or 6379}"
