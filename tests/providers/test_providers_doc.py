"""docs/providers.md states what the translators do: keep its tables and the code's constants in step."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelgate_proxy.providers import ai21labs_chat, anthropic_messages, cohere_chat, cohere_embed
from modelgate_proxy.providers.palm import RETIRED_MESSAGE

DOC = (Path(__file__).parents[2] / "docs" / "providers.md").read_text()


def section(name: str) -> str:
    return DOC.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize(
    ("name", "unsupported"),
    [("anthropic", anthropic_messages.UNSUPPORTED), ("cohere", cohere_chat.UNSUPPORTED), ("ai21labs", ai21labs_chat.UNSUPPORTED)],
)
def test_unsupported_parameters_are_listed(name: str, unsupported: tuple[str, ...]) -> None:
    text = section(name)
    missing = [p for p in unsupported if f"`{p}`" not in text]
    assert not missing, f"docs/providers.md ({name}) does not list {missing}"


def test_defaults_are_documented() -> None:
    assert f"{anthropic_messages.DEFAULT_MAX_TOKENS} when the caller gives neither" in section("anthropic")
    assert f"`input_type` defaults to\n`{cohere_embed.DEFAULT_INPUT_TYPE}`" in section("cohere")
    assert RETIRED_MESSAGE in section("palm").replace("\n", " ")


@pytest.mark.parametrize("sample", ["anthropic-chat.yaml", "cohere-chat.yaml", "cohere-embeddings.yaml", "ai21labs-chat.yaml"])
def test_example_manifests_exist(sample: str) -> None:
    assert f"samples/{sample}" in DOC
    assert (Path(__file__).parents[2] / "samples" / sample).is_file()
