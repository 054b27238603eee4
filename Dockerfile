# One image for both planes; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt ./
COPY prism ./prism
COPY controlplane ./controlplane
COPY dataplane ./dataplane
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system prism
USER prism
