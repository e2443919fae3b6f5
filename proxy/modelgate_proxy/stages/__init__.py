"""Pipeline stages: one home per AI Gateway feature, holding its logic and its stage (``traffic_split``,
``fallbacks``, ``identity/``, ``rate_limits/``, ``guardrails/``, ``records/``), and ``invoke``, the provider call
that ends every pipeline. Stages depend on :mod:`modelgate_proxy.exchange` and lower layers, never on each other;
which stages an endpoint has is decided by :mod:`modelgate_proxy.endpoints.stage_list`."""
