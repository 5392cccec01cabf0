# syntax=docker/dockerfile:1
#
# The API image: one statically linked (musl) binary and nothing else.
# Build: `docker compose build` (or `docker build -t flashsale-api .`).

# ---- build ------------------------------------------------------------------
# Same toolchain version the tests run with.
FROM rust:1.95-slim AS build
# Pure Rust dependencies only (no C code), so the musl target's bundled libc
# and start files are enough: no musl-tools needed.
RUN rustup target add x86_64-unknown-linux-musl
WORKDIR /build

# 1. Dependencies, in their own layer: rebuilt only when a manifest, the lock
#    file or another workspace member changes. Cargo loads every member of the
#    workspace (manifest and targets) even when building one package, so the
#    other members (perf/*: benchmarks, load generators; their manifests and
#    sources, as .dockerignore lets in) come whole, and our own crate gets
#    empty stand-ins. tests/deploy_checks.rs reproduces this stage and fails
#    if cargo cannot load it.
COPY Cargo.toml Cargo.lock ./
COPY perf perf
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && : > src/lib.rs \
 && cargo build --release --locked --target x86_64-unknown-linux-musl -p flashsale \
 && rm -rf src

# 2. Our code. COPY may keep the files' old modification times, which could
#    look older than the stand-ins' build: touch them so cargo rebuilds the
#    crate for real instead of shipping the stand-in.
COPY src src
RUN find src -type f -exec touch {} + \
 && cargo build --release --locked --target x86_64-unknown-linux-musl -p flashsale \
 && cp target/x86_64-unknown-linux-musl/release/flashsale /flashsale

# ---- runtime ----------------------------------------------------------------
# No shell, no libc, no package manager: the image is the binary (~1-2 MB).
# Name resolution of `db` uses the /etc/hosts and /etc/resolv.conf that Docker
# mounts into every container.
FROM scratch
COPY --from=build /flashsale /flashsale
# nobody:nogroup by number (scratch has no /etc/passwd); port 8080 needs no privilege.
USER 65534:65534
ENV PORT=8080
EXPOSE 8080
# SIGTERM (the default stop signal) drains in-flight requests, then exits.
ENTRYPOINT ["/flashsale"]
