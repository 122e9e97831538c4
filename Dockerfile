# The Airflow image every service of docker-compose.yaml runs: the official image with this provider
# installed, so the scheduler and dag-processor can parse the example DAGs, the Celery workers run the
# operators, and the triggerer imports the provider's triggers (deferrable sensors hand off to it).
#
#   docker compose build          # or: docker build -t airflow-provider-fulfillment .
#
# Keep the tag equal to the apache-airflow pin in constraints.txt (a test checks it). To build on your
# own Airflow image: docker build --build-arg BASE_IMAGE=apache/airflow:3.2.2 .
ARG BASE_IMAGE=apache/airflow:3.3.2
FROM ${BASE_IMAGE}

# Airflow's published constraints for the image's own Airflow and Python versions (the official way to
# extend the image); override with another URL (a mirror) or a path to a file already in the image.
ARG AIRFLOW_CONSTRAINTS_LOCATION=""
ENV FULFILLMENT_SRC=/opt/airflow/src/airflow-provider-fulfillment

# Only what the build needs (see .dockerignore); the source last, so editing code reuses the layers above.
COPY --chown=airflow:0 pyproject.toml README.md constraints.txt ${FULFILLMENT_SRC}/
COPY --chown=airflow:0 scripts/merge_constraints.py ${FULFILLMENT_SRC}/scripts/
COPY --chown=airflow:0 airflow_provider_fulfillment ${FULFILLMENT_SRC}/airflow_provider_fulfillment

# Install against Airflow's constraints for this very image, so nothing already in it is up- or
# downgraded; our constraints.txt pins only what Airflow's file does not name. The image's package set
# is compared before and after: the build fails if the install changed any version already there.
RUN set -eux; \
    airflow_version=$(python -c "import importlib.metadata as m; print(m.version('apache-airflow'))"); \
    python_version=$(python -c "import sys; print('%d.%d' % sys.version_info[:2])"); \
    location=${AIRFLOW_CONSTRAINTS_LOCATION:-https://raw.githubusercontent.com/apache/airflow/constraints-${airflow_version}/constraints-${python_version}.txt}; \
    case "$location" in \
        http*) curl -fsSL -o /tmp/airflow-constraints.txt "$location" ;; \
        *) cp "$location" /tmp/airflow-constraints.txt ;; \
    esac; \
    python ${FULFILLMENT_SRC}/scripts/merge_constraints.py /tmp/airflow-constraints.txt \
        ${FULFILLMENT_SRC}/constraints.txt > /tmp/constraints.txt; \
    pip freeze --all | sort > /tmp/before.txt; \
    pip install --no-cache-dir -c /tmp/constraints.txt "apache-airflow==${airflow_version}" "${FULFILLMENT_SRC}"; \
    pip freeze --all | sort > /tmp/after.txt; \
    changed=$(comm -23 /tmp/before.txt /tmp/after.txt); \
    if [ -n "$changed" ]; then echo "the install changed packages of the image: $changed"; exit 1; fi; \
    rm -f /tmp/airflow-constraints.txt /tmp/constraints.txt /tmp/before.txt /tmp/after.txt

# The example DAGs are baked in for a self-contained image; docker-compose.yaml mounts ./dags over them.
COPY --chown=airflow:0 dags /opt/airflow/dags
