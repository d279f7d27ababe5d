# tern in a scratch image: the static binary built on the host, CA certificates, and
# nothing else (no shell, no libc). Build with scripts/build-image, which compiles
#   RUSTFLAGS='-C target-feature=+crt-static' \
#     cargo build --release --target x86_64-unknown-linux-gnu --bin tern
# and copies the host's CA bundle into deploy/image/ before `docker build`.
FROM scratch

COPY deploy/image/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY target/x86_64-unknown-linux-gnu/release/tern /tern

# Numeric ids need no /etc/passwd. /data is the store_dir mount point, owned by that
# user so a fresh named volume (initialised from the image) is writable.
COPY --chown=65532:65532 deploy/image/data/ /data/
USER 65532:65532
WORKDIR /data

# clients, routes, monitoring, and the future Raft/admin port.
EXPOSE 4222 6222 8222 6250

HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/tern", "healthcheck"]

ENTRYPOINT ["/tern"]
CMD ["-m", "8222"]
