# Every target does its own whole set-up on a fresh Debian/Ubuntu machine.
#   make demo    plays the bundled demo clip through the default brain
#   make test    installs everything the tests need (Debian packages too), runs the suite
#   make test-quick  the same set-up, then the quick subset: no JACK, GUI, torch or slow tests
#   make bench   runs the benchmarks and prints the figures recorded in BENCHMARKS.md
#   make brains  rebuilds brains/default.onnx (the real-world brain) from scratch
#   make screenshot  draws the monitor on a virtual X server (Xvfb) into docs/monitor.png
#   make screenshot-pd  checks the Pd patch's layout in Pd's own GUI, draws docs/pd-patch.png

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Debian packages: PortAudio for sounddevice; what the monitor's Qt needs to open a window
# on X11 (MONITOR_DEBS: the libraries PySide6's plugins/platforms/libqxcb.so and Qt's
# libQt6XcbQpa/Gui/Widgets/DBus link, mapped to packages; liveframe/ui/display.py's
# XCB_DEBS says which library is whose, and a test keeps the two lists equal) and a font;
# a JACK server (dummy backend in tests), Csound, Pd and liblo's oscsend as real peers,
# ffmpeg's ffprobe to check muxed files, Xvfb (a real X server for the monitor's
# screenshot) and binutils' objdump (the test that checks MONITOR_DEBS reads the plugin).
MONITOR_DEBS := libdbus-1-3 libegl1 libfontconfig1 libfreetype6 libgl1 libglib2.0-0 \
                libx11-6 libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 \
                libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-render0 \
                libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-util1 libxcb-xfixes0 \
                libxcb-xkb1 libxcb1 libxkbcommon-x11-0 libxkbcommon0 fonts-dejavu-core
# python3-venv: Debian and Ubuntu split `python3 -m venv` (ensurepip) from python3
RUNTIME_DEBS := python3 python3-venv libportaudio2 $(MONITOR_DEBS)
TEST_DEBS    := $(RUNTIME_DEBS) jackd2 csound puredata-core liblo-tools ffmpeg xvfb binutils

# pytest exits 5 when it collects no test: make fails on it like on any other failure.
PYTEST := QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest
QUICK  := not jack and not gui and not torch and not slow

.PHONY: demo test test-quick bench brains brains-shapes screenshot screenshot-pd \
        debs-runtime debs-test lint clean

# order-only: the Debian packages (python3-venv among them) go in before the venv is made
$(BIN)/python: | debs-runtime
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

# the real engine playing the demo clip to a JACK dummy server, its monitor on Xvfb with
# the real X11 platform, grabbed from the X server after a few seconds
screenshot: debs-test $(VENV)/.runtime
	xvfb-run -a -s "-screen 0 1400x900x24" env QT_QPA_PLATFORM=xcb \
		$(BIN)/python tools/screenshot_monitor.py docs/monitor.png

# the Pd patch in Pd's own GUI on Xvfb: checks that no box overlaps another, draws
# docs/pd-patch.png (Pd's Tk GUI and ImageMagick's import are only needed here)
PD_SHOT_DEBS := puredata-core puredata-gui xvfb imagemagick
screenshot-pd: $(VENV)/.runtime
	@sh tools/install_debs.sh $(PD_SHOT_DEBS)
	$(BIN)/python tools/patch_screenshot.py patches/liveframe-control.pd -o docs/pd-patch.png

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
