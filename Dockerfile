# syntax=docker/dockerfile:1
# One image for every service: `stocksent produce`, `classify` (the default), `learn`, `aggregate`.
#   docker build -t stocksent .
#   docker run --rm stocksent --help
# TensorFlow: the `tensorflow` wheel on Linux is CPU-only unless its [and-cuda] extra is
# asked for, so this image runs the model on CPU without any CUDA libraries.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, read from pyproject.toml, in their own layer: editing the code does not
# reinstall TensorFlow.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
# Then the project itself (with the committed pretrained model, package data of `model`).
COPY common ./common
COPY stocksent ./stocksent
COPY model ./model
COPY producers ./producers
COPY stream ./stream
RUN pip install --no-deps . \
    && stocksent --version

FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    STOCKSENT_METRICS_HOST=0.0.0.0
# Named volumes mounted on /var/lib/stocksent (the producer's state) and its models/ (the
# model store) take this ownership.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/stocksent stocksent \
    && install -d -o stocksent -g stocksent /var/lib/stocksent /var/lib/stocksent/models
COPY --from=build /opt/venv /opt/venv
USER stocksent
WORKDIR /home/stocksent
# classifier /metrics, /healthz, /readyz; producer /metrics; learner /metrics, /healthz;
# aggregator /metrics, /healthz, /readyz
EXPOSE 9300 9301 9302 9303
# Alive = /healthz answers on the classifier's metrics port (python, so the image needs no
# curl). The other services serve on other ports (the producer /metrics only):
# docker-compose.yml gives each its own check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('STOCKSENT_CLASSIFIER_METRICS_PORT', '9300'), timeout=4)"]
ENTRYPOINT ["stocksent"]
CMD ["classify"]
