# The two commands of the README: `make demo` and `make test`. Both set up what they need.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml scripts/setup.sh scripts/install-helm-tools.sh | sha1sum | cut -c1-12)

.PHONY: setup demo test lint proto

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh scripts/install-helm-tools.sh
	VENV=$(VENV) bash scripts/setup.sh
	touch $@

demo: setup
	$(VENV)/bin/steadyeye demo $(if $(SOURCE),--source $(SOURCE)) --frames $(or $(FRAMES),200)

# The rollout controller's tests need a real kube-apiserver: built once per machine (~4 min
# cold), cached under ~/.cache/steadyeye/kube, a no-op after that.
test: setup
	$(VENV)/bin/ruff check .
	bash scripts/install-kube-apiserver.sh
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# Regenerate steadyeye/v1 from proto/ (CI checks the committed code is current).
proto: setup
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. proto/steadyeye/v1/*.proto
