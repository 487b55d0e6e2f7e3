# storecast: one image, every component (`storecast serve gateway|ingest|query|vector`).
# Build from the repository root: docker build -t storecast:0.1.0 .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm
# "embedded" carries chDB (~550 MB) for chdb:// store URLs; against a ClickHouse
# server build with --build-arg EXTRAS= for an image without it.
ARG EXTRAS=embedded

# The web console's charts: `make vendor` fetches uPlot from the npm registry and checks
# its integrity, as on a developer's machine (node and make are in this image).
FROM ${NODE_IMAGE} AS console
WORKDIR /src
COPY Makefile ./
RUN make vendor

FROM ${PYTHON_IMAGE} AS builder
ARG EXTRAS
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/storecast
ENV PATH=/opt/storecast/bin:$PATH
COPY pyproject.toml ./
COPY proto proto
COPY storecast storecast
COPY services services
COPY gateway gateway
COPY --from=console /src/gateway/console/vendor gateway/console/vendor
# The gRPC code is generated as the Makefile does, then installed with the
# package; grpcio-tools (pinned as in pyproject's dev extras) stays behind.
# DL3013 reads ".[extras]" as an unpinned package: it is this source tree, whose dependencies pyproject pins.
# hadolint ignore=DL3013
RUN pip install grpcio-tools==1.85.1 \
    && python -m grpc_tools.protoc -Iproto --python_out=. --grpc_python_out=. proto/storecast/v1/*.proto \
    && pip install ".${EXTRAS:+[$EXTRAS]}" \
    && pip uninstall --yes grpcio-tools

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 storecast \
    && useradd --system --uid 10001 --gid storecast --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin storecast
COPY --from=builder /opt/storecast /opt/storecast
# Read-only root: no bytecode caches; the only writable place is /tmp (a volume in Kubernetes).
ENV PATH=/opt/storecast/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STORECAST_DEV_DIR=/tmp/storecast \
    STORECAST_HTTP_HOST=0.0.0.0 \
    STORECAST_GRPC_HOST=0.0.0.0
WORKDIR /tmp
USER 10001:10001
EXPOSE 8443 50051 50052
ENTRYPOINT ["storecast", "serve"]
CMD ["gateway"]
