# Orchard in a container: a static binary on distroless, as a non-root user,
# with the data dir on a volume. Build and run:
#   docker build -t orchard .
#   docker run -d -p 8443:8443 -v orchard-data:/data \
#     -e ORCHARD_PUBLIC_URL=https://mdm.example.com:8443 orchard
# TestDockerfile (deploy/) checks these properties and builds the same binary.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN mkdir -p /out/data && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/orchardmdm/orchard/internal/version.version=${VERSION} -X github.com/orchardmdm/orchard/internal/version.commit=${COMMIT}" -o /out/orchard ./cmd/orchard

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/orchard /usr/local/bin/orchard
# 65532 is distroless' nonroot user; a new volume takes /data's owner.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV ORCHARD_DATA=/data ORCHARD_LISTEN=:8443
VOLUME ["/data"]
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/orchard"]
CMD ["serve"]
