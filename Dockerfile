# Builds the controller image: the `bellwether` binary alone on a distroless base, run as non-root.
FROM rust:1.92-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin bellwether

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/bellwether /bellwether
USER nonroot
EXPOSE 8080 8081
ENTRYPOINT ["/bellwether", "controller"]
