# syntax=docker/dockerfile:1
# The modelgate operator: `modelgate-operator run`, as the Helm chart runs it.
# Build from the repository root:  docker build -f docker/operator.Dockerfile -t modelgate-operator:dev .
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---- build: a virtualenv with modelgate[operator] (kopf, lightkube) (compilers only here, for any sdist)
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/modelgate
COPY pyproject.toml README.md /src/
COPY proxy /src/proxy
COPY operator /src/operator
RUN /opt/modelgate/bin/pip install "/src[operator]" \
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
# The chart sets the same command and passes `run --namespace=... | --all-namespaces ...` as args
# (tests/chart/test_dockerfiles.py checks they agree).
ENTRYPOINT ["modelgate-operator"]
CMD ["run", "--all-namespaces", "--liveness=http://0.0.0.0:8080/healthz"]
