"""``modelgate serve``'s guardrail judge options (docs/guardrails.md): the process-wide judge of ``safety`` and
``validTopics`` for endpoints whose spec names none, as a
:class:`~modelgate_proxy.spec.gateway.GuardrailJudge`."""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from ..spec.gateway import GuardrailJudge
from .manifests import ConfigError


def add_judge_arguments(serve: argparse.ArgumentParser) -> None:
    judge = serve.add_argument_group("Guardrail judge", "the model deciding safety and validTopics for endpoints "
                                     "whose aiGateway.guardrails.judge names none (docs/guardrails.md)")
    judge.add_argument("--guardrail-judge-endpoint", default=None, metavar="NAME",
                       help="a chat endpoint served by this proxy that serves the judge model (e.g. Llama Guard)")
    judge.add_argument("--guardrail-judge-url", default=None, metavar="URL",
                       help="or an OpenAI-compatible API: <URL>/chat/completions is called")
    judge.add_argument("--guardrail-judge-model", default=None, metavar="MODEL", help="the model sent to the URL")
    judge.add_argument("--guardrail-judge-api-key", default=None, metavar="REF",
                       help="the URL's bearer credential as a {{secrets/<name>/<key>}} reference (read from "
                            "--secrets-dir)")
    judge.add_argument("--guardrail-judge-timeout", type=float, default=5.0, metavar="S",
                       help="seconds one verdict may take (default 5)")
    judge.add_argument("--guardrail-judge-failure-policy", choices=["FAIL_CLOSED", "LOG_ONLY"], default="FAIL_CLOSED",
                       help="without a verdict: refuse with 503 (FAIL_CLOSED, the default) or log and pass")
    judge.add_argument("--judge-file", dest="judge_files", action="append", default=[], metavar="FILE",
                       help="ServingEndpoint manifests built only as judges of the served endpoints (named by "
                            "their judge.endpoint or --guardrail-judge-endpoint), never routed (repeatable; the "
                            "operator renders a judge endpoint of another ServingEndpoint this way)")


def judge_arguments(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "guardrail_judge_endpoint": args.guardrail_judge_endpoint,
        "guardrail_judge_url": args.guardrail_judge_url,
        "guardrail_judge_model": args.guardrail_judge_model,
        "guardrail_judge_api_key": args.guardrail_judge_api_key,
        "guardrail_judge_timeout": args.guardrail_judge_timeout,
        "guardrail_judge_failure_policy": args.guardrail_judge_failure_policy,
        "judge_files": list(args.judge_files),
    }


def judge_settings(settings: dict[str, Any]) -> GuardrailJudge | None:
    """The process-wide judge, or ``None``; raises :class:`ConfigError` when the options do not fit."""
    endpoint, url = settings.get("guardrail_judge_endpoint"), settings.get("guardrail_judge_url")
    if not endpoint and not url:
        if settings.get("guardrail_judge_model") or settings.get("guardrail_judge_api_key"):
            raise ConfigError("--guardrail-judge-model and --guardrail-judge-api-key need --guardrail-judge-url")
        return None
    try:
        return GuardrailJudge.model_validate({
            "endpoint": endpoint or None, "url": url or None, "model": settings.get("guardrail_judge_model") or None,
            "apiKey": settings.get("guardrail_judge_api_key") or None,
            "timeoutSeconds": float(settings.get("guardrail_judge_timeout") or 5.0),
            "failurePolicy": settings.get("guardrail_judge_failure_policy") or "FAIL_CLOSED"})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'judge'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"--guardrail-judge-*: {problems}") from None
