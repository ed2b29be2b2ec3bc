# syntax=docker/dockerfile:1
# zoomstream's images: one build, three targets.
#   docker build --target ingest    -t zoomstream/ingest .
#   docker build --target processor -t zoomstream/processor .
#   docker build --target cli       -t zoomstream/cli .
# docker-compose.yml builds the first two.

# The lock needs rustc >= 1.89 (apache-avro 0.22: 1.88, uuid 1.29: 1.89); 1.95 is the toolchain
# the workspace is built and tested with.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
# rdkafka-sys builds librdkafka from source with CMake (C toolchain in the image) against the
# system's OpenSSL and zlib, and a libcurl it builds itself (OIDC tokens).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake pkg-config libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The target dir is a cache mount (kept between builds, not in the layer), so the binaries are
# copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin zoomstream-ingest --bin zoomstream-processor --bin zoomstream-sse --bin zoomstream \
 && mkdir -p /out \
 && cp target/release/zoomstream-ingest target/release/zoomstream-processor target/release/zoomstream-sse target/release/zoomstream /out/

FROM debian:bookworm-slim AS runtime
# The binaries link OpenSSL (librdkafka's TLS) and zlib (in the base image) dynamically;
# CA certificates for TLS to brokers, the schema registry and HTTPS ingest URLs.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 zoomstream \
 && useradd --system --uid 10001 --gid zoomstream --no-create-home --shell /usr/sbin/nologin zoomstream \
 && mkdir -p /var/lib/zoomstream/spool \
 && chown 10001:10001 /var/lib/zoomstream/spool
# The shipped sources file and the schemas it names (paths are relative to the sources file).
COPY schemas/sources.toml schemas/*.avsc /etc/zoomstream/schemas/
# Numeric, so that runtimes can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001

FROM runtime AS ingest
COPY --from=builder /out/zoomstream-ingest /usr/local/bin/
# The disk spool's folder (ZOOMSTREAM_SPOOL_DIR), owned by the service's user; compose mounts
# a named volume here.
VOLUME /var/lib/zoomstream/spool
EXPOSE 8080
ENTRYPOINT ["zoomstream-ingest"]

FROM runtime AS processor
COPY --from=builder /out/zoomstream-processor /usr/local/bin/
ENV ZOOMSTREAM_SOURCES=/etc/zoomstream/schemas/sources.toml
EXPOSE 9090
ENTRYPOINT ["zoomstream-processor"]

FROM runtime AS sse
COPY --from=builder /out/zoomstream-sse /usr/local/bin/
ENV ZOOMSTREAM_SOURCES=/etc/zoomstream/schemas/sources.toml
EXPOSE 8090
ENTRYPOINT ["zoomstream-sse"]

FROM runtime AS cli
COPY --from=builder /out/zoomstream /usr/local/bin/
ENV ZOOMSTREAM_SOURCES=/etc/zoomstream/schemas/sources.toml
ENTRYPOINT ["zoomstream"]
CMD ["--help"]
