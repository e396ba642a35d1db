# Every target does its own set-up and is a thin wrapper over a `course` subcommand,
# so `course doctor`, `course lab`, ... do the same without make (see README).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.course-installed
# pass options through: make lab LAB_ARGS="--port 8899"; make test PYTEST_ARGS="-k clip"
LAB_ARGS    ?=
PYTEST_ARGS ?=
JOBS        ?= 2
ONLY        ?=
ASSIGNMENT  ?=
GRADE_ARGS  ?=

.PHONY: setup lab test release grade bench doctor lint lock clean

setup: $(STAMP)

# Rebuilt only when the pinned dependencies change; pip reads torch from this machine's disk.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[lab,dev]'
	$(BIN)/course setup
	@touch $(STAMP)

lab: setup
	$(BIN)/course lab -- $(LAB_ARGS)

test: setup
	$(BIN)/course test --jobs $(JOBS) -- $(PYTEST_ARGS)

release: setup
	$(BIN)/course release

grade: setup
	@test -n "$(ASSIGNMENT)" || { echo "usage: make grade ASSIGNMENT=demo [GRADE_ARGS='--jobs 2']"; exit 2; }
	$(BIN)/course grade $(ASSIGNMENT) $(GRADE_ARGS)

bench: setup
	$(BIN)/course bench $(if $(ONLY),--only $(ONLY),)

doctor: setup
	$(BIN)/course doctor

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# Re-pin every dependency after editing pyproject.toml's ranges.
lock: setup
	$(BIN)/python -m pip install --quiet -e '.[lab,dev]'
	{ echo "# Exact versions the .venv gets (pip install -c constraints.txt). Regenerate with: make lock"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^course'; } > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
