"""Caller identity: who is calling, read from the trusted headers an authenticating proxy sets (:mod:`.headers`),
and the stage that names the caller on the exchange (:mod:`.caller`)."""
