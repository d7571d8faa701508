# syntax=docker/dockerfile:1
# xenguard image: one binary for `xenguard exporter`, `xenguard receiver` and the rest, as
# deployed by helm/xenguard (args `exporter --config /etc/xenguard/config.yml`, ports 9878 and
# 9879, user 65532). scripts/checks/30-helm.sh checks this file against the chart statically;
# no Docker engine runs in the test environment, so the image itself is not built there.
#
#   docker build -t xenguard:0.1.0 .
#   docker run --rm -p 9878:9878 -v $PWD/config.yml:/etc/xenguard/config.yml:ro \
#       xenguard:0.1.0 exporter --config /etc/xenguard/config.yml

# ---------------------------------------------------------------------------- build
FROM rust:1-bookworm AS builder
WORKDIR /src
# The whole crate (see .dockerignore): Cargo.toml declares the bench target, so benches/ must
# exist for cargo to read the manifest.
COPY . .
# --locked: exactly Cargo.lock's versions. The cache mounts keep the registry and the build
# directory between builds, so the binary is copied out inside the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin xenguard \
    && install -D -m 0755 target/release/xenguard /out/xenguard

# ---------------------------------------------------------------------------- runtime
# debian:bookworm-slim rather than gcr.io/distroless/cc-debian12:nonroot because the receiver
# runs ClusterLabs fence agents (fence_ipmilan and friends are Python programs calling
# ipmitool), which need Debian's fence-agents and ipmitool packages and a Python interpreter;
# distroless has no package manager and no Python. The exporter uses the same image.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates fence-agents ipmitool \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 65532 xenguard \
    && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin xenguard \
    && install -d -o 65532 -g 65532 -m 0750 /var/lib/xenguard \
    && install -d -m 0755 /etc/xenguard
COPY --from=builder /out/xenguard /usr/local/bin/xenguard
# Fence agents run with a read-only root filesystem: no byte-code files, HOME on /tmp.
ENV PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
WORKDIR /var/lib/xenguard
# 9878: exporter (/metrics, /-/healthy, /-/ready); 9879: receiver (POST /alertmanager).
EXPOSE 9878 9879
ENTRYPOINT ["xenguard"]
CMD ["--help"]
