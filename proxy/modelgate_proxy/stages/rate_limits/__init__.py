"""Rate limits (``aiGateway.rateLimits``): the fixed-window counters and the rules that pick a caller's limits
(:mod:`.counters`), and the stage that admits, refuses (429) and charges tokens (:mod:`.admission`)."""
