# The Airflow image every service of docker-compose.yaml runs: the official image with this provider
# installed, so the scheduler and dag-processor can parse the example DAGs, the Celery workers run the
# operators, and the triggerer imports the provider's triggers (deferrable sensors hand off to it).
#
#   docker compose build          # or: docker build -t airflow-provider-fulfillment .
#
# Keep the tag equal to the apache-airflow pin in constraints.txt (a test checks it).
FROM apache/airflow:3.3.2

ENV FULFILLMENT_SRC=/opt/airflow/src/airflow-provider-fulfillment

# Only what the build needs (see .dockerignore); the source last, so editing code reuses the layers above.
COPY --chown=airflow:0 pyproject.toml README.md constraints.txt ${FULFILLMENT_SRC}/
COPY --chown=airflow:0 airflow_provider_fulfillment ${FULFILLMENT_SRC}/airflow_provider_fulfillment

# Pinned by the project's constraints (Airflow's convention), so the image runs the tested set.
RUN pip install --no-cache-dir -c ${FULFILLMENT_SRC}/constraints.txt ${FULFILLMENT_SRC}

# The example DAGs are baked in for a self-contained image; docker-compose.yaml mounts ./dags over them.
COPY --chown=airflow:0 dags /opt/airflow/dags
