# Builds the images: the controller (the default, the last stage) and, with `--target demo-app`, the
# demo app that the quickstart ships as a canary. Each is the `bellwether` binary alone on a
# distroless base, run as non-root.
FROM rust:1.92-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin bellwether

# `docker build --target demo-app -t bellwether-demo-app .`: `bellwether demo-app`, serving traffic and
# /metrics on 8080 and /admin/faults on 127.0.0.1:8081 (inside the pod). The load generator is the same
# image with the command `/bellwether demo-load`.
FROM gcr.io/distroless/cc-debian12:nonroot AS demo-app
COPY --from=build /src/target/release/bellwether /bellwether
USER nonroot
EXPOSE 8080
ENTRYPOINT ["/bellwether", "demo-app"]

FROM gcr.io/distroless/cc-debian12:nonroot AS controller
COPY --from=build /src/target/release/bellwether /bellwether
USER nonroot
EXPOSE 8080 8081
ENTRYPOINT ["/bellwether", "controller"]
