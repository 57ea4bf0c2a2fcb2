# Baton operator image: a static binary on a minimal, non-root base.
# `make static` builds the same binary outside Docker (and CI runs it).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target x86_64-unknown-linux-gnu -p baton-controller --bin baton \
 && cp target/x86_64-unknown-linux-gnu/release/baton /baton

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /baton /baton
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/baton"]
CMD ["run"]
