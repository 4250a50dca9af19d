# syntax=docker/dockerfile:1
# Maoga server image: a static Go binary on a small Alpine runtime, run as a non-root user.
#   docker build -t maoga .
#   docker run -p 8080:8080 -e JWT_SECRET=$(openssl rand -hex 32) maoga
# (without MONGODB_URI it uses the embedded store under /data; docker-compose.yml runs the cluster.)

FROM golang:1.26-alpine AS build
WORKDIR /src
# Dependencies first: this layer is reused while only our code changes.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO off: FerretDB's SQLite backend is pure Go, so the binary needs no libc.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/maoga ./cmd/maoga

FROM alpine:3.20
# ca-certificates for SMTP/webhook TLS; wget (busybox) serves the health check.
RUN apk add --no-cache ca-certificates \
 && addgroup -S -g 10001 maoga \
 && adduser -S -D -H -u 10001 -G maoga maoga \
 && mkdir -p /data && chown maoga:maoga /data
COPY --from=build /out/maoga /usr/local/bin/maoga
USER maoga:maoga
WORKDIR /data
ENV PORT=8080 DATA_DIR=/data LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD wget -q -O /dev/null http://127.0.0.1:8080/readyz || exit 1
# SIGTERM (docker stop) starts the graceful shutdown: sockets are told "server shutting down".
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/maoga"]
