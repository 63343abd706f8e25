# The two commands of the README: `make run` and `make test`. Both set up everything they need.
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS := serving,operator,sample,test,dev

# `make run` serves the quickstart InferenceService on this machine (memoserve run); its
# spec.model.uri points into SAMPLE_MODELS (memoserve dev sample-model's default directory).
QUICKSTART := manifests/examples/quickstart.yaml
SAMPLE_MODELS := /tmp/memoserve-models
PORT ?= 8080

.PHONY: run test install tools system-deps control-plane bench-operator lint typecheck pytest bench clean

run: install
	test -f $(SAMPLE_MODELS)/iris.onnx || $(VENV)/bin/memoserve dev sample-model --out $(SAMPLE_MODELS)
	$(VENV)/bin/memoserve run -f $(QUICKSTART) --port $(PORT)

test: system-deps install tools control-plane lint typecheck pytest

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

# Outside tools the tests run, each in a virtualenv of its own (their pins are not ours):
# checkov reads the rendered manifests in tests/operator/test_checkov.py; grpcurl (built from
# its Go module, cached per machine) runs the command `memoserve run` prints; MLServer
# (.local/mlserver) is the cache front's upstream in tests/serving/front and the bench's peer;
# KServe (.local/kserve) is a gRPC client and a front's upstream in the tests; helm (built from
# its Go module, cached per machine) renders, lints and installs charts/ in tests/helm and tests/e2e.
CHECKOV := .local/checkov/bin/checkov
KSERVE := .local/kserve/.installed
tools: install $(CHECKOV) $(KSERVE)
	bash scripts/build-grpcurl.sh
	bash scripts/build-helm.sh
	VENV=$(VENV) bash scripts/mlserver-venv.sh

$(CHECKOV):
	python3 -m venv .local/checkov
	.local/checkov/bin/pip install -q --upgrade pip
	.local/checkov/bin/pip install -q 'checkov>=3.2,<4'

# KServe's Python SDK (InferenceGRPCClient) for tests/serving/grpc/test_kserve_client.py: it
# brings ~70 packages and its own inference.* stubs, so it runs in its own interpreter.
$(KSERVE):
	python3 -m venv .local/kserve
	.local/kserve/bin/pip install -q --upgrade pip
	.local/kserve/bin/pip install -q 'kserve>=0.21,<0.22'
	touch $@

system-deps:
	bash scripts/install-system-deps.sh

# The e2e tier's Kubernetes control plane, built from Go modules once per machine (cached),
# kube-state-metrics, which tests/observability runs against it, and the Gateway API's CRDs it
# installs (Go module cache). GKE's CRDs need nothing fetched: they are made from our own schemas
# in tests/operator/data/schemas (tests/support/gke_crds.py).
control-plane:
	bash scripts/build-control-plane.sh
	bash scripts/build-kube-state-metrics.sh
	bash scripts/gateway-api-crds.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: install
	$(VENV)/bin/mypy

# Two pytest-xdist workers: the e2e tier (one control plane, one operator) runs whole on one of
# them (tests/e2e/conftest.py groups it) while the other runs the rest; 24 -> 14 min on 2 vCPUs.
PYTEST_WORKERS ?= 2
pytest: install tools
	$(VENV)/bin/pytest -q -p no:cacheprovider --durations=25 -n $(PYTEST_WORKERS) --dist loadgroup

bench: system-deps install
	bash bench/serving/run.sh

# The operator at scale on the local control plane (N = 100, 500, 1000; ~15 min).
bench-operator: install control-plane
	$(PY) bench/operator-scale/bench.py

clean:
	rm -rf $(VENV) .local .mypy_cache .ruff_cache .pytest_cache $(SAMPLE_MODELS)

# Rewrite the golden files (tests/operator/data/output) after an intended change to the builders;
# review the diff. The tests only compare: a test run never rewrites them.
.PHONY: golden
golden: install
	$(PY) -m tests.operator.golden --update
