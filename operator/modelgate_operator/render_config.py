"""Pure: the proxy's config text and the digest that rolls its pods when the config or a secret value changes."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import yaml

from modelgate_proxy.spec import SecretRef

from .secrets import SecretField

Manifest = dict[str, Any]


_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""libyaml's emitter when PyYAML has it (7x faster; the same text for ordinary manifests)."""


def config_text(manifest: Manifest) -> str:
    return str(yaml.dump(manifest, Dumper=_DUMPER, sort_keys=True, width=120, allow_unicode=True))


def owned_secret_data(fields: list[SecretField]) -> dict[str, str]:
    """``<entity>.<field>`` -> base64 of the plaintext value."""
    return {
        f.owned_key: base64.b64encode(f.plaintext.encode()).decode()
        for f in fields
        if f.plaintext is not None
    }


def checksum(config: str, owned: dict[str, str], resolved: dict[SecretRef, str]) -> str:
    """One digest over the config and every secret value the proxy will read (a change rolls the pods)."""
    doc = {"config": config, "owned": owned, "referenced": {str(k): v for k, v in sorted(resolved.items())}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
