"""Where the Delta tables live: a root (a local directory, or ``s3://``, ``gs://``, ``abfss://`` URIs) under
which ``<catalog>.<schema>.<table>`` is the directory ``<root>/<catalog>/<schema>/<table>``, and the object
store's options (credentials, endpoint, concurrency mode) handed to delta-rs as they are.

Options come from a file (``--table-storage-options FILE``: a JSON or YAML mapping, e.g. a mounted Kubernetes
Secret) and from the environment, which delta-rs reads itself (``AWS_ACCESS_KEY_ID``, ``AWS_REGION``,
``AWS_ENDPOINT_URL``, ``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN`` for workload identity,
``GOOGLE_APPLICATION_CREDENTIALS``, ``AZURE_STORAGE_*``, ...). Option values are never logged.

Concurrent writers (several replicas): on a local filesystem delta-rs commits with an atomic
create-if-absent of the next log entry, so two writers never both win a version; on S3, deltalake 1.x does the
same with S3's conditional writes (``If-None-Match``); a store without them is safe for one writer only
(docs/records.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import orjson
import yaml

REMOTE_SCHEMES = ("s3://", "s3a://", "gs://", "abfss://", "az://", "azure://")


class StoreConfigError(ValueError):
    """The table root or its options file cannot be used."""


@dataclass(frozen=True, slots=True)
class TableStore:
    root: str
    storage_options: dict[str, str] = field(default_factory=dict)

    @property
    def remote(self) -> bool:
        return self.root.startswith(REMOTE_SCHEMES)

    def location(self, full_name: str) -> str:
        """``catalog.schema.table`` -> the table's URI (a path for a local root)."""
        parts = full_name.split(".")
        if len(parts) != 3 or not all(parts):
            raise StoreConfigError(f"a table name has three parts, catalog.schema.table: {full_name!r}")
        if self.remote:
            return "/".join([self.root.rstrip("/"), *parts])
        return str(Path(self.root).absolute().joinpath(*parts))

    def options(self) -> dict[str, str] | None:
        return dict(self.storage_options) or None


def load_store(root: str, options_file: str | None) -> TableStore:
    options: dict[str, str] = {}
    if options_file:
        try:
            text = Path(options_file).read_bytes()
        except OSError as exc:
            raise StoreConfigError(f"cannot read the table storage options file {options_file}: "
                                   f"{exc.strerror}") from None
        try:
            data = orjson.loads(text) if options_file.endswith(".json") else yaml.safe_load(text)
        except (orjson.JSONDecodeError, yaml.YAMLError):
            raise StoreConfigError(f"the table storage options file {options_file} is not JSON or YAML") from None
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            raise StoreConfigError(f"the table storage options file {options_file} must hold a mapping")
        options = {k: v if isinstance(v, str) else orjson.dumps(v).decode().strip('"') for k, v in data.items()}
    return TableStore(root, options)
