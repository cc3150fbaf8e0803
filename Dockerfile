# weightgate server image. Two stages: the first installs the locked dependencies and builds
# this checkout's wheel into a virtualenv; the second copies only that virtualenv onto the
# same base image, with pip, setuptools and wheel removed, and runs as an unprivileged user.
#
#   docker build -t weightgate .
#   docker run --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
#       --stop-timeout 50 -p 8000:8000 -e WEIGHTGATE_DATABASE_URL=... \
#       -e WEIGHTGATE_STORAGE_URL=s3://... weightgate
#
# The default command migrates the database, then serves (`weightgate serve` does both);
# deployments with several replicas run `weightgate migrate` once and start the replicas
# with `serve --no-migrate` (deploy/compose.yaml, deploy/k8s/). docs/deployment.md says
# how a release pins BASE_IMAGE by digest.
#
# No `# syntax=` line: the classic builder (DOCKER_BUILDKIT=0) builds this file as well as
# BuildKit does, and BuildKit would fetch a frontend image for that line.

ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The tools that build the wheel (pip, setuptools, wheel) and every dependency come from
# lock files with hashes (deploy/lockfile.py); dependencies are wheels only, never built
# here. This layer changes only when a lock does, so code edits do not reinstall them.
COPY deploy/build-requirements.lock deploy/requirements.lock /src/deploy/
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes --no-deps -r deploy/build-requirements.lock \
    && python3 -m venv --without-pip /opt/weightgate \
    && /opt/build/bin/pip --python /opt/weightgate/bin/python install \
       --require-hashes --no-deps --only-binary :all: -r deploy/requirements.lock
# The application: a wheel built from exactly the copied sources (no earlier build/
# directory can leak into it), installed without dependencies, then checked: every
# requirement satisfied, the command and the migrations importable.
COPY pyproject.toml README.md /src/
COPY app /src/app
COPY migrations /src/migrations
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/dist /src \
    && /opt/build/bin/pip --python /opt/weightgate/bin/python install --no-deps --no-index \
       /tmp/dist/weightgate-*.whl \
    && /opt/build/bin/pip --python /opt/weightgate/bin/python check \
    && /opt/weightgate/bin/weightgate --help > /dev/null \
    && /opt/weightgate/bin/python -c "from app.migrate import head_revision; assert head_revision()"

FROM ${BASE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="weightgate" \
      org.opencontainers.image.description="Staged model-weight distribution server" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY deploy/image/remove-packaging-tools.py /tmp/
RUN python3 /tmp/remove-packaging-tools.py \
    && rm /tmp/remove-packaging-tools.py \
    && groupadd --system --gid 10001 weightgate \
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
# SIGTERM starts uvicorn's graceful shutdown: in-flight requests (uploads) get
# `serve --graceful-timeout` (30 s) and the background loops 15 s more. Give the container
# at least that before it is killed: `docker run --stop-timeout 50`, `stop_grace_period`
# in Compose, `terminationGracePeriodSeconds` in Kubernetes.
STOPSIGNAL SIGTERM
# Liveness only (the process answers); readiness (database + store) is /readyz.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/opt/weightgate/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["weightgate", "serve", "--host", "0.0.0.0", "--port", "8000"]
