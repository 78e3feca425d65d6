# The gaitsym image of the clinic stack: `gaitsym worker` and `gaitsym clinic influx-setup` (deploy/clinic/compose.yaml
# builds it from the repository root; worker.Dockerfile.dockerignore keeps the build context to the package).
# Debian bookworm's Python 3.11, the release the project is tested on; pinned, never `latest`.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/gaitsym
COPY pyproject.toml README.md LICENSE* ./
COPY firmware_protocol ./firmware_protocol
COPY gaitsym_common ./gaitsym_common
COPY sensor_gateway ./sensor_gateway
COPY analytics ./analytics
COPY simulator ./simulator
COPY dashboards ./dashboards
COPY report ./report
COPY export ./export
COPY gaitsym ./gaitsym
RUN pip install . && rm -rf /opt/gaitsym/build

# compose runs it as the clinic folder's owner (never root); the state folder is a volume
WORKDIR /var/lib/gaitsym
ENTRYPOINT ["gaitsym"]
CMD ["--help"]
