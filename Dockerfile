# One image for both planes and the engine; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt ./
COPY prism ./prism
COPY controlplane ./controlplane
COPY dataplane ./dataplane
COPY engine ./engine
# The engine's file bytes: a volume mounted there starts with this owner.
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system prism \
    && mkdir -p /var/lib/prism/engine-data && chown prism /var/lib/prism/engine-data
USER prism
