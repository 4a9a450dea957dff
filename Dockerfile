# The connector and its LINE sandbox in one image (used by docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY connector ./connector
COPY result_url ./result_url
COPY schemas ./schemas
COPY examples ./examples
# The postgres extra: schedulers on several machines share a PostgreSQL state database.
RUN pip install --no-cache-dir '.[postgres]'
ENTRYPOINT ["python", "-m", "connector"]
