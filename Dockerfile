# dispatch-authz: a multi-stage image. The build and the entry point are
# scripts/container.sh's, which tests/it/compose.rs runs too.
#
#   docker build -t dispatch-authz .
#   docker run --rm -v $PWD/cfg:/etc/dispatch-authz:ro \
#     -e DISPATCH_AUTHZ_CONFIG=/etc/dispatch-authz/dispatch-authz.toml dispatch-authz

# The toolchain CI builds with (rust-version in Cargo.toml is the floor).
FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN scripts/container.sh build /out

FROM debian:bookworm-slim
# CA certificates: OIDC discovery, JWKS and the GitHub API are HTTPS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/dispatch-authz --create-home dispatch-authz
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
WORKDIR /var/lib/dispatch-authz
# Listen on every address inside the container (the defaults are loopback);
# the SQLite default lands in the working directory, a volume in production.
ENV DISPATCH_AUTHZ_SERVER__LISTEN=0.0.0.0:50051 \
    DISPATCH_AUTHZ_ADMIN__LISTEN=0.0.0.0:50052 \
    DISPATCH_AUTHZ_OPERATIONS__LISTEN=0.0.0.0:50054
EXPOSE 50051 50052 50054
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/dispatch-authz", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/container.sh", "run"]
CMD ["serve"]
