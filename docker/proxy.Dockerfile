# syntax=docker/dockerfile:1
# The modelgate proxy: `modelgate serve`, as the operator runs it in every proxy Deployment.
# Build from the repository root:  docker build -f docker/proxy.Dockerfile -t modelgate-proxy:dev .
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---- build: a virtualenv with modelgate and its dependencies (compilers only here, for any sdist)
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/modelgate
COPY pyproject.toml README.md /src/
COPY proxy /src/proxy
COPY operator /src/operator
RUN /opt/modelgate/bin/pip install /src \
 && /opt/modelgate/bin/pip uninstall -y pip \
 && find /opt/modelgate -name '__pycache__' -prune -exec rm -rf {} +

# ---- final: the slim runtime, the virtualenv, no compiler, no pip, non-root
FROM ${PYTHON_IMAGE}
COPY --from=build /opt/modelgate /opt/modelgate
ENV PATH=/opt/modelgate/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 65532:65532
EXPOSE 8080
# The command the operator renders for the proxy container (tests/chart/test_dockerfiles.py checks it). It names
# no authentication on purpose: `serve` refuses to start without one (docs/authentication.md), and the operator
# appends the endpoint's (--auth-config FILE, or --no-auth); a bare `docker run` adds e.g. --api-keys DIR.
ENTRYPOINT ["modelgate", "serve"]
CMD ["-f", "/etc/modelgate/endpoint.yaml", "--secrets-dir", "/etc/modelgate/secrets", "--host", "0.0.0.0", "--port", "8080"]
