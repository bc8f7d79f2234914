# The concert service image: one binary that runs `concert api` (the default), `concert worker` or
# `concert migrate` against an external Temporal cluster and PostgreSQL. docker-compose.yml shows the whole stack.
#
#   docker build -t concert .
#   docker run --rm -e DATABASE_URL=... -e TEMPORAL_ADDRESS=... concert worker
#
# The binary is built with -tags nodev: `concert dev` and the embedded Temporal server and Web UI it links
# (go.temporal.io/server, github.com/temporalio/ui-server) stay out of the image; `concert dev` answers with an
# error there. cmd/concert/compose_test.go checks this file keeps doing so.

# Build stage. The tag matches go.mod's go line exactly, so the toolchain never downloads another one.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
# Modules first, in their own layer: a source change does not download them again. This downloads every module
# go.mod lists, the dev server's too (once, cached in the layer); the build below compiles only what it links.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static (CGO off), reproducible (no local paths) and stripped.
RUN CGO_ENABLED=0 go build -tags nodev -trimpath -ldflags='-s -w' -o /out/concert ./cmd/concert

# Runtime stage: the binary alone, no Go toolchain and no source. Alpine rather than distroless because the
# compose health check of the API needs an HTTP client inside the container (busybox wget), and the binary has
# no health-check subcommand. Alpine's base already carries the CA certificates for TLS to a managed database.
FROM alpine:3.24.1
RUN adduser -D -H -u 10001 concert
COPY --from=build /out/concert /concert
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/concert"]
CMD ["api"]
