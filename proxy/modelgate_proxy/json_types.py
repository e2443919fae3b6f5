"""The one JSON alias: a decoded JSON object (request bodies, provider answers, stream chunks)."""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]
"""A JSON object as :mod:`orjson` decodes it."""
