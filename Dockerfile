# The neurocypher explorer for docker-compose.yml (CPU-only torch keeps the image small).
FROM python:3.11-slim
WORKDIR /srv/neurocypher
COPY pyproject.toml README.md ./
COPY neurocypher neurocypher
COPY ingest ingest
COPY queries queries
COPY app app
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir .
EXPOSE 8501
CMD ["neurocypher", "app", "--address", "0.0.0.0"]
