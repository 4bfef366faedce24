# Every target creates or reuses .venv and installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint format train bench bot playground clean

# The main job: the bot on Discord when DISCORD_TOKEN is set (in .env or the environment),
# else the local playground with the same bot attached.
run: $(STAMP)
	$(BIN)/python -m playground --auto

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bot: $(STAMP)
	$(BIN)/python -m bot

playground: $(STAMP)
	$(BIN)/python -m playground

# Rebuild the shipped model from a freshly generated synthetic set (about 45 minutes on 2 cores).
# It is published in runs/default (numbered versions and CURRENT) and its current version is
# copied into model/default, which git keeps as a flat folder.
train: $(STAMP)
	$(BIN)/python -m training.synthetic data/synthetic --seed 0
	$(BIN)/python -m training data/synthetic --out runs/default \
		--notes "synthetic set: python -m training.synthetic data/synthetic --seed 0"
	rm -rf model/default && cp -r runs/default/$$(cat runs/default/CURRENT) model/default

# Every benchmark, uploads (real-sized photos, screenshots, GIFs through the bot) included;
# learning and gpu only when named: $(BIN)/python -m benchmarks --only gpu
bench: $(STAMP)
	$(BIN)/python -m benchmarks

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,train,postgres]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
