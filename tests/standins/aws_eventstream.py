"""Encoder of AWS event stream frames (``application/vnd.amazon.eventstream``) for the Bedrock stand-in.

No maintained Python encoder exists for Python 3.11 (botocore only decodes; AWS's smithy-aws-event-stream needs
Python 3.12), so frames are built here from the published format and checked by decoding them with botocore's
``EventStreamBuffer`` in tests/providers/test_aws_eventstream.py.

Frame (all integers big-endian): total length u32 | headers length u32 | CRC-32 of the previous 8 bytes |
headers | payload | CRC-32 of everything before it. A header is name length u8 | name | value type u8 |
value; type 7 is a string with a u16 length.
Reference: https://docs.aws.amazon.com/AmazonS3/latest/API/RESTSelectObjectAppendix.html and
https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html (event stream encoding).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import orjson

_STRING = 7


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", _STRING, len(raw_value)) + raw_value


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + encoded + payload
    return message + struct.pack("!I", zlib.crc32(message) & 0xFFFFFFFF)


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    """An event frame as Bedrock sends it (``p`` is Bedrock's length-hiding padding; clients ignore it)."""
    body = orjson.dumps({**payload, "p": "abcdefgh"})
    return frame({":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}, body)


def exception(exception_type: str, message: str) -> bytes:
    body = orjson.dumps({"message": message})
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return frame(headers, body)
