# syntax=docker/dockerfile:1
# weightgate server image. Two stages: the first builds a virtualenv with `pip install .`
# (the same package `make test` installs, without the test extras); the second copies only
# that virtualenv onto a slim base and runs as an unprivileged user.
#
#   docker build -t weightgate .
#   docker run -p 8000:8000 -e WEIGHTGATE_DATABASE_URL=... -e WEIGHTGATE_STORAGE_URL=s3://... weightgate
#
# The default command migrates the database, then serves (`weightgate serve` does both);
# deployments with several replicas run `weightgate migrate` once and start the replicas
# with `serve --no-migrate` (see deploy/compose.yaml and deploy/k8s/).

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/weightgate \
    && /opt/weightgate/bin/pip install --upgrade "pip>=24" "setuptools>=69" wheel
# Dependencies first, from the metadata alone, so code edits do not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p app migrations \
    && touch app/__init__.py migrations/__init__.py \
    && /opt/weightgate/bin/pip install . \
    && /opt/weightgate/bin/pip uninstall --yes weightgate
COPY app ./app
COPY migrations ./migrations
RUN /opt/weightgate/bin/pip install --no-deps . \
    && /opt/weightgate/bin/weightgate --help > /dev/null

FROM python:${PYTHON_VERSION}-slim AS runtime
LABEL org.opencontainers.image.title="weightgate" \
      org.opencontainers.image.description="Staged model-weight distribution server" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 weightgate \
    && useradd --system --uid 10001 --gid weightgate --no-create-home \
       --home-dir /var/lib/weightgate --shell /usr/sbin/nologin weightgate \
    && mkdir -p /var/lib/weightgate/keys \
    && chown -R weightgate:weightgate /var/lib/weightgate \
    && chmod 0700 /var/lib/weightgate/keys
COPY --from=build /opt/weightgate /opt/weightgate
ENV PATH=/opt/weightgate/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WEIGHTGATE_ENVIRONMENT=production \
    WEIGHTGATE_DATA_DIR=/var/lib/weightgate
WORKDIR /var/lib/weightgate
USER 10001:10001
EXPOSE 8000
# Liveness only (the process answers); readiness (database + store) is /readyz.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["weightgate", "serve", "--host", "0.0.0.0", "--port", "8000"]
