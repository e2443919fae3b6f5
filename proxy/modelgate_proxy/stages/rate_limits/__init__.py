"""Rate limits (``aiGateway.rateLimits``): which limits apply to a caller (:mod:`.limit_plan`), what a request
reserves (:mod:`.reservation`), the counters' interface (:mod:`.counters`) over a sliding window
(:mod:`.windows`) with two backends (:mod:`.local_counters`, :mod:`.redis_counters`), and the stage that admits,
refuses (429) and settles tokens (:mod:`.admission`). docs/rate-limits.md tells the whole of it."""
