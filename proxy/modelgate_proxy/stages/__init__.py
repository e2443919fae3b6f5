"""Pipeline stages, one module each (see :mod:`modelgate_proxy.pipeline`)."""
