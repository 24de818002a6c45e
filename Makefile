# edgecnn — the README's commands. Everything runs inside .venv, created on first use.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# train-jax and train-torch: CI trains on every Keras backend (torch==2.13.0 resolves to the CPU wheel here)
EXTRAS ?= train,train-jax,train-torch,tflite,onnx,ray,mqtt,opcua,modbus,gpio,serve,sign,dev
PYTEST_ARGS ?=
# MediaPipe Tasks, the standard consumer of our .tflite files, in a venv of its own (its pins are its own)
MP_VENV := .venv-mediapipe
MP_STAMP := $(MP_VENV)/.installed
MEDIAPIPE ?= mediapipe==1.2.2

export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: install mediapipe-venv system-deps demo test test-edge test-arm64 bench lint clean constraints

# Debian packages the tests run for real (a broker, a browser, ...): installed by apt-get when missing and root
# (as CI is); elsewhere the tests that need one are skipped with a reason that names the package.
DEB_PACKAGES ?= chromium mosquitto systemd prometheus

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	touch $(STAMP)

# tests/mediapipe runs the real mediapipe.tasks ImageClassifier on every .tflite `edgecnn export` writes.
mediapipe-venv: $(MP_STAMP)

# The venv's own pip installs mediapipe's wheels; no self-upgrade (an upgrade of pip in place was seen to leave a
# broken pip behind). A half-made venv is removed and made again, and the stamp is touched only once Tasks import.
$(MP_STAMP): constraints.txt
	rm -rf $(MP_VENV)
	$(PYTHON) -m venv $(MP_VENV)
	$(MP_VENV)/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt "$(MEDIAPIPE)"
	$(MP_VENV)/bin/python -c "from mediapipe.tasks.python.vision import ImageClassifier"
	touch $(MP_STAMP)

system-deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "Debian packages missing:$$missing (not root: the tests that need them are skipped)"; fi

demo: install
	$(BIN)/edgecnn demo

test: install $(MP_STAMP) system-deps
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)
	$(MAKE) test-edge

# Installs the built wheel with only the edge extras in fresh venvs and runs an exported model there (no TensorFlow).
test-edge: install
	$(BIN)/python tests/edge_install_check.py --python $(PYTHON)

# The offline bundle on aarch64: an rpi4 bundle installed with no network in a Debian 12 arm64 root run by qemu-user
# (emulated), self-checked there, a folder run compared row by row with x86. As root; makes the root once with
# debootstrap and caches it outside the repository ($$EDGECNN_ARM64_ROOT, default /var/cache/edgecnn-arm64-root).
# Not part of `make test`: ~4-6 minutes with the root cached (emulated pip install and self-check), ~15 more to
# make the root; run it before a stop that touches packaging (edgecnn/deploy, pyproject.toml, constraints.txt).
test-arm64: install
	$(BIN)/python tests/arm64_check.py

bench: install
	for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

lint: install
	$(BIN)/ruff check edgecnn converters tests benchmarks

constraints: install
	{ grep '^#' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | sed '/^-e /d'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) $(MP_VENV) build dist *.egg-info .pytest_cache
