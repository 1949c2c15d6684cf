# The two commands of the README: `make demo` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test chromium messages

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/idp demo

# Browser tests drive Debian's Chromium; install it when missing (never a downloaded build).
chromium:
	@test -x /usr/bin/chromium || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  $$(command -v sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$(command -v sudo) apt-get install -y -qq chromium; }

# The layers of docs/architecture.md first (import-linter, pyproject.toml), then every test.
test: $(VENV)/.installed chromium
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

# The message catalogs (docs/translations.md): extract each area's English text from the code
# and templates (babel/<area>.cfg), then add what is new to each language's catalog. The
# translations themselves are written by people in idp/translations/<lang>/LC_MESSAGES/*.po;
# tests/unit/test_translations.py fails while one is missing. One area: make messages AREAS=console
AREAS ?= hosted console account
KEYWORDS := -k _l -k lazy_gettext -k lazy_ngettext:1,2
messages: $(VENV)/.installed
	@mkdir -p build
	@for area in $(AREAS); do \
	  $(BIN)/pybabel -q extract -F babel/$$area.cfg $(KEYWORDS) --no-location --sort-output \
	    --add-comments=Translators: --project=idp -o build/$$area.pot . && \
	  for lang in de fr es; do \
	    if [ -f idp/translations/$$lang/LC_MESSAGES/$$area.po ]; then \
	      $(BIN)/pybabel -q update -i build/$$area.pot -d idp/translations -D $$area -l $$lang \
	        --no-fuzzy-matching --ignore-obsolete; \
	    else \
	      $(BIN)/pybabel -q init -i build/$$area.pot -d idp/translations -D $$area -l $$lang; \
	    fi; \
	  done; \
	done
