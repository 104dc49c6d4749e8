# The on-premise image of the AWS collector for Devo.
#   buildah bud --isolation chroot --storage-driver vfs -t aws-collector .   (or docker build)
#   docker run -v $PWD/config:/config aws-collector run --config /config/collector.yaml
FROM python:3.11-slim

WORKDIR /opt/aws-collector
COPY setup.py constraints.txt README.md ./
COPY awscollector ./awscollector
RUN pip install --no-cache-dir -c constraints.txt . \
    && useradd --system --home /var/lib/aws-collector --create-home collector
USER collector
WORKDIR /var/lib/aws-collector
# state/ (API checkpoints) and deadletter/ live here by default: mount a volume to keep them.
VOLUME ["/var/lib/aws-collector"]
ENTRYPOINT ["aws-collector"]
CMD ["--help"]
