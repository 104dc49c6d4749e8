# The AWS collector for Devo, as a container image.
#
#   docker build -t aws-collector .
#   docker run --rm -v $PWD/config:/etc/aws-collector:ro -v aws-collector:/var/lib/aws-collector \
#       aws-collector run --config /etc/aws-collector/collector.yaml
#
# BASE is any Debian-like image with Python 3.11 and its venv module: python:3.11-slim from
# a registry by default, or one made locally without a registry (`make image` builds one
# from Debian's packages, see image/base.sh).
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
# Build behind a TLS-inspecting proxy: mount its CA bundle for this step only (make image).
ARG PIP_CERT
WORKDIR /src
COPY setup.py pyproject.toml constraints.txt README.md ./
COPY awscollector ./awscollector
# Only what `run`, `validate`, `setup` and `iam-policy` need: no demo, no test extras.
RUN python3 -m venv /opt/aws-collector \
    && /opt/aws-collector/bin/pip install --no-cache-dir --no-compile -c constraints.txt . \
    && /opt/aws-collector/bin/python -m compileall -q /opt/aws-collector/lib

FROM ${BASE}
COPY --from=build /opt/aws-collector /opt/aws-collector
RUN useradd --uid 10001 --user-group --home-dir /var/lib/aws-collector --no-create-home \
        --shell /usr/sbin/nologin collector \
    && install -d -o collector -g collector -m 0750 /var/lib/aws-collector
ENV PATH=/opt/aws-collector/bin:$PATH \
    PYTHONUNBUFFERED=1
USER collector
# Relative paths of the config resolve here: state/ (API checkpoints) and deadletter/
# by default. Mount a volume here, or a new container reads again what was delivered.
# Not declared with VOLUME: an anonymous volume would hide a forgotten mount.
WORKDIR /var/lib/aws-collector
# SIGTERM: stop polling, deliver what is in flight, exit (give it 30 s or more).
STOPSIGNAL SIGTERM
ENTRYPOINT ["aws-collector"]
CMD ["--help"]
