FROM python:3.11-slim
WORKDIR /srv/modelpress
COPY pyproject.toml constraints.txt README.md alembic.ini ./
COPY app ./app
COPY workers ./workers
COPY compressor ./compressor
COPY migrations ./migrations
# Editable, so `modelpress migrate` finds alembic.ini and migrations/ beside the code.
RUN pip install --no-cache-dir -c constraints.txt -e .
ENV MODELPRESS_DATA_DIR=/var/lib/modelpress
EXPOSE 8000
CMD ["modelpress", "serve"]
