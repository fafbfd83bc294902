FROM python:3.11-slim
WORKDIR /srv/modelpress
COPY pyproject.toml constraints.txt README.md alembic.ini ./
COPY app ./app
COPY workers ./workers
COPY compressor ./compressor
COPY migrations ./migrations
# Editable, so `modelpress migrate` finds alembic.ini and migrations/ beside the code.
# EXTRAS=mlflow adds the MLflow hand-off (a job's "register": {"mlflow": ...}).
ARG EXTRAS=""
RUN pip install --no-cache-dir -c constraints.txt -e ".${EXTRAS:+[$EXTRAS]}"
# The gpu pool's image (docker-compose.yml, worker-gpu) swaps in onnxruntime-gpu: GPU targets are
# measured on its CUDAExecutionProvider. Both wheels install the `onnxruntime` package, so the
# CPU one goes first.
ARG ONNXRUNTIME_GPU=""
RUN if [ -n "$ONNXRUNTIME_GPU" ]; then \
        pip uninstall -y onnxruntime && pip install --no-cache-dir "$ONNXRUNTIME_GPU"; \
    fi
ENV MODELPRESS_DATA_DIR=/var/lib/modelpress
# Not root: the sandbox for executable uploads maps its user to the service's, and root's
# would own /etc/shadow and every root-only file.
RUN useradd --system --uid 10001 --user-group --no-create-home modelpress \
    && mkdir -p /var/lib/modelpress && chown modelpress:modelpress /var/lib/modelpress
USER modelpress
EXPOSE 8000
CMD ["modelpress", "serve"]
