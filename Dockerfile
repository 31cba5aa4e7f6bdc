# trek-audit: the panel and its indexer, serving on port 5000, data in the volume /data.
#
#   docker build -t trek-audit .
#   docker build --build-arg BASE_IMAGE=registry.example.com/python:3.11-slim -t trek-audit .
#   docker run -d -p 127.0.0.1:5000:5000 -v ./data:/data trek-audit
#
# The base image is a build argument so that a mirror or a locally built image can stand in
# for Docker Hub's; it needs Python 3.11 or newer with pip and venv.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
# A compiler and OpenSSL's headers for the writer's C fast path (it hashes the chain with
# libcrypto, which the base image has for Python's own ssl); they stay in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY trek_audit/ trek_audit/
COPY writer/ writer/
COPY indexer/ indexer/
COPY store/ store/
COPY webui/ webui/
RUN python -m venv /opt/trek-audit \
    && /opt/trek-audit/bin/pip install --no-cache-dir --disable-pip-version-check --quiet .

FROM ${BASE_IMAGE}
# uid and gid 1000 by default: those of TREK's own image, whose log files (0640) and
# directories (0750) this container reads and writes in the shared volume.
ARG UID=1000
ARG GID=1000
RUN groupadd --gid "${GID}" trek-audit \
    && useradd --uid "${UID}" --gid trek-audit --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin trek-audit \
    && mkdir -p /data \
    && chown trek-audit:trek-audit /data \
    && chmod 0750 /data
COPY --from=build /opt/trek-audit /opt/trek-audit
ENV PATH=/opt/trek-audit/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TREK_DATA_DIR=/data
USER trek-audit:trek-audit
WORKDIR /data
VOLUME ["/data"]
EXPOSE 5000
# The slim images have no curl or wget: Python's urllib asks /healthz, which answers 200 while
# the audit log is ok or degraded and 503 when it is failing (urlopen raises: exit 1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/healthz', timeout=4)"]
CMD ["trek-audit", "serve", "--host", "0.0.0.0", "--data-dir", "/data"]
