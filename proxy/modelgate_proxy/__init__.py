"""modelgate's LLM gateway proxy. Its layers, top to bottom (import-linter enforces them; a module imports only
its own layer and lower ones; ``|`` joins independent siblings); see docs/architecture.md:

    __main__, cli        the ``modelgate`` command: one module per subcommand (serve, convert)
    server               HTTP: lean query routes, read APIs, errors -> responses, SSE out
    endpoints            start-up: adapters, the one stage list, each endpoint's pipeline, shared services
    stages               one home per AI Gateway feature (traffic_split, fallbacks, identity, rate_limits,
                         guardrails, records) and invoke; independent of each other
    exchange             Exchange, Outcome, results, the Stage protocol, Pipeline, endpoint runtime, Principal
    upstream             the pooled aiohttp client; transport errors mapped once
    providers            one adapter per provider
    aggregate | credentials | error_shapes | metrics | sse | usage_tokens
    errors               the one exception tree
    json_types           the one JSON alias
    spec                 the ServingEndpoint models (shared with the operator) and the Databricks converter

This package imports nothing itself, so ``import modelgate_proxy.spec`` loads only the spec and pydantic.
"""
