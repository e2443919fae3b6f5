"""Guardrails (``aiGateway.guardrails``): the text checks of one direction (:mod:`.text_guard`), the PII detector
(:mod:`.pii`), and the stage that checks and masks the request and the answer (:mod:`.checks`)."""
