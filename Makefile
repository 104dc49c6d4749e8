# Both targets create .venv if it is missing and install what they need, so they
# work on a fresh clone with nothing but Python 3.11.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat setup.py constraints.txt | cksum | cut -d' ' -f1)

.PHONY: demo test bench bench-flink lint install clean image flink-up flink-down flink-status

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): $(PY) setup.py constraints.txt
	$(PIP) install -q -c constraints.txt -e '.[demo,test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/aws-collector demo

test: $(STAMP)
	$(VENV)/bin/ruff check awscollector tests benchmarks
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) benchmarks/vpc_flow_bench.py --processes 1,2
	$(PY) benchmarks/cloudtrail_bench.py --processes 1,2
	$(PY) benchmarks/cloudwatch_logs_bench.py

# Starts its own Flink cluster (flink/cluster.py; java and mvn the first time), stops it.
bench-flink: $(STAMP)
	$(PY) benchmarks/flink_bench.py

# The container image, built with buildah on a Debian base made here (no registry
# needed; image/build.sh). Needs root, or buildah set up rootless.
IMAGE ?= localhost/aws-collector:latest
image:
	image/build.sh $(IMAGE)

lint: $(STAMP)
	$(VENV)/bin/ruff check awscollector tests benchmarks

clean:
	rm -rf demo-out build *.egg-info

# A Flink 1.19 session cluster on this machine (flink/README.md); downloads are
# cached in ~/.cache/aws-collector/flink, state and logs go to flink/.state.
flink-up: $(STAMP)
	$(PY) flink/cluster.py up

flink-down: $(STAMP)
	$(PY) flink/cluster.py down

flink-status: $(STAMP)
	$(PY) flink/cluster.py status
