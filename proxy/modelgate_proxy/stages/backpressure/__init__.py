"""Provider back-pressure: retries with backoff (:mod:`.policy`, :mod:`.attempts`) and cool-downs shared through
Redis (:mod:`.redis_cooldowns`; the in-process store is :mod:`modelgate_proxy.cooldowns`)."""
