# recsd container image: one image for the API and the worker deployments
# (RECSD_ACTORS chooses the actors). Multi-stage on debian:bookworm-slim:
# the build stage compiles recsd with the -dev packages, the runtime stage
# carries only the shared libraries `ldd recsd` names, the binary and the
# migrations, and runs as a non-root user with recsd as PID 1 (the
# supervisor reaps orphans and handles SIGTERM/SIGINT itself, so no tini).
#
#   podman build -t recsd .      (or docker build; ops/container/build-image.sh
#                                  builds it where no registry is reachable)
#   docker run --rm -p 8080:8080 -e RECSD_PG_DSN=... recsd            -> recsd run
#   docker run --rm -e RECSD_PG_DSN=... recsd migrate

# --- build -------------------------------------------------------------------
FROM debian:bookworm-slim AS build
# The libraries of CMakeLists.txt's pkg_check_modules plus Debian's static
# libfaiss (lib/faiss_index.cpp); python3-minimal because CMakeLists.txt
# looks for python3 (integration tests) at configure time.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config python3-minimal \
      libzmq3-dev libczmq-dev libmsgpack-dev librdkafka-dev libpq-dev libhiredis-dev \
      libjansson-dev libjwt-dev libcurl4-openssl-dev libmicrohttpd-dev libopenblas-dev \
      libssl-dev libfaiss-dev \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the recsd target compiles: tests, benchmarks and fuzzers are
# globbed by CMake and simply absent here. No test runs in the image build.
COPY CMakeLists.txt ./
COPY proto proto
COPY lib lib
COPY supervisor supervisor
COPY actors actors
RUN cmake -S /src -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DRECSD_DEFAULT_MIGRATIONS_DIR=/usr/share/recsd/migrations \
 && cmake --build /build --target recsd -j"$(nproc)" \
 && objcopy --only-keep-debug /build/recsd /build/recsd.debug \
 && strip --strip-debug /build/recsd \
 && objcopy --add-gnu-debuglink=/build/recsd.debug /build/recsd
# /build/recsd.debug stays in this stage: `--target build` to fetch it.

# --- runtime -------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
# The runtime halves of the -dev packages above, as `ldd /build/recsd`
# lists them (libfaiss is static; libgomp is FAISS's OpenMP), plus libjwt0,
# which the binary links as soon as the gateway authenticates
# (lib/auth_jwt.c). ca-certificates: HTTPS to S3.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libzmq5 libczmq4 libmsgpackc2 librdkafka1 libpq5 libhiredis0.14 libjansson4 \
      libcurl4 libmicrohttpd12 libopenblas0-pthread libssl3 libgomp1 libstdc++6 libjwt0 \
      ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 recsd \
 && useradd --system --uid 10001 --gid recsd --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin recsd \
 && install -d -o recsd -g recsd -m 0755 /run/recsd /var/cache/recsd /var/lib/recsd

COPY --from=build /build/recsd /usr/local/bin/recsd
COPY migrations /usr/share/recsd/migrations
# Fails the image build if a shared library is missing.
RUN /usr/local/bin/recsd version

# Defaults for a container; everything else is the README's table.
# RECSD_RUNTIME_DIR is a subdirectory recsd creates itself (mode 0700): a
# mounted volume (Kubernetes emptyDir) at /run/recsd need not be ours to chmod.
ENV RECSD_HTTP_ADDR=0.0.0.0 \
    RECSD_HTTP_PORT=8080 \
    RECSD_RUNTIME_DIR=/run/recsd/rt \
    RECSD_ARTIFACT_CACHE_DIR=/var/cache/recsd/artifacts \
    RECSD_ARTIFACT_URL=file:///var/lib/recsd/artifacts \
    RECSD_MIGRATIONS_DIR=/usr/share/recsd/migrations \
    RECSD_LOG_LEVEL=info

USER 10001:10001
WORKDIR /var/lib/recsd
EXPOSE 8080
STOPSIGNAL SIGTERM
# The supervisor answers on its admin socket while it runs (Kubernetes uses
# the HTTP probes instead, see ops/k8s).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/recsd", "ctl", "status"]
ENTRYPOINT ["/usr/local/bin/recsd"]
CMD ["run"]
