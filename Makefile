# EmoDetect-Pro: `make run` starts the web app on the shipped model, `make test` runs the tests.
# Both create .venv when it is missing and install what is needed (fast the second time).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
DATA   ?= dataset/fer2013
FERPLUS_DATA ?= dataset/ferplus
# HOST, PORT and MODEL (make run HOST=0.0.0.0 PORT=8000 MODEL=models/baseline_cnn.h5, or the same in the
# environment) choose where the site listens and its default model; each one unset is utils/defaults.py's.
SITE   ?= site

.PHONY: run test setup setup-dev setup-notebooks system-check test-system-deps browser-models site train \
	train-baseline train-ferplus evaluate evaluate-crowd data notebooks notebooks-html clean

# The classroom server (gunicorn with gunicorn.conf.py: 2 workers x 4 threads) where it is installed;
# Flask's development server where it is not (Windows). On this computer only unless HOST says otherwise.
run: setup browser-models
	@if [ -x $(VENV)/bin/gunicorn ]; then \
		HOST="$(HOST)" PORT="$(PORT)" $(VENV)/bin/gunicorn -c gunicorn.conf.py \
			'app:create_app($(if $(MODEL),{"DEFAULT_MODEL": "$(MODEL)"}))'; \
	else \
		$(PY) app.py $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT)) $(if $(MODEL),--model $(MODEL)); \
	fi

test: setup-dev test-system-deps
	@if [ -z "$$DISPLAY" ] && command -v xvfb-run >/dev/null; then \
		xvfb-run -a -s "-screen 0 1280x1024x24" $(PY) -m pytest -ra; \
	else \
		$(PY) -m pytest -ra; \
	fi

# Each emotion model exported for the in-browser engine (LiteRT.js) into build/browser/, again whenever
# its .h5 or card has changed since (a few seconds a model); nothing to do when they are current.
browser-models: setup
	@$(PY) scripts/export_browser.py --out build/browser

# The Live and Analyse pages as static files (SITE=site by default) for any static web server: a classroom
# with no server (README: Running it for a classroom). A folder make site did not write is refused unless REPLACE=1.
site: browser-models
	$(PY) scripts/make_site.py $(if $(MODEL),--model $(MODEL)) --out $(SITE) $(if $(REPLACE),--replace)

# What pip cannot install (Python's venv module, Tk) is checked first, with the command that adds it.
system-check:
	@sh scripts/check_system.sh "$(PYTHON)"

$(PY): | system-check
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt requirements-detector.txt | $(PY)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -r requirements-detector.txt
	@touch $@

$(VENV)/.dev-installed: requirements.txt requirements-detector.txt requirements-dev.txt requirements-xai.txt | $(PY)
	$(PY) -m pip install -r requirements-dev.txt
	$(PY) -m pip install --no-deps -r requirements-detector.txt
	@touch $@ $(VENV)/.runtime-installed

$(VENV)/.notebooks-installed: requirements.txt requirements-detector.txt requirements-notebooks.txt | $(PY)
	$(PY) -m pip install -r requirements-notebooks.txt
	$(PY) -m pip install --no-deps -r requirements-detector.txt
	@touch $@

setup: $(VENV)/.runtime-installed
setup-dev: $(VENV)/.dev-installed
setup-notebooks: $(VENV)/.notebooks-installed

# The browser and desktop tests need Debian's chromium and Xvfb; installed when missing and possible.
test-system-deps:
	@sh scripts/install_test_deps.sh

# The shipped emotion model in its four stages: 40 epochs from scratch, 40 more from there with a
# cosine schedule and random erasing, 12 cyclic epochs whose weights are averaged (about 75 + 70 + 20
# minutes on a 2-core CPU with bfloat16; two hours for the third stage without), then 10 more with half
# the faces framed as photos serve them (two hours on a 2-core AVX2 CPU), and its confidence calibrated.
train: setup
	$(PY) train.py --data $(DATA) --arch vgg --epochs 40 --out models/emotion_model.h5
	$(PY) train.py --data $(DATA) --arch vgg --epochs 40 --init-from models/emotion_model.h5 \
		--learning-rate 5e-4 --schedule cosine --erase 0.5 --out models/emotion_model.h5
	$(PY) train.py --data $(DATA) --arch vgg --epochs 12 --init-from models/emotion_model.h5 \
		--learning-rate 3e-4 --schedule cyclic --erase 0.5 --average-weights --out models/emotion_model.h5
	$(PY) train.py --data $(DATA) --arch vgg --epochs 10 --init-from models/emotion_model.h5 \
		--learning-rate 3e-4 --schedule cyclic --erase 0.5 --average-weights --served-share 0.5 --out models/emotion_model.h5
	$(PY) evaluate.py --model models/emotion_model.h5 --data $(DATA)/test --calibrate --photo-path

train-baseline: setup
	$(PY) train.py --data $(DATA) --arch baseline --epochs 80 --out models/baseline_cnn.h5

# The FER+ model (docs/training.md): 20 epochs fine-tuned from the emotion model's convolutions under a new head of
# eight classes, learning the distribution of ten people's votes on raw pixels, then 8 cyclic epochs (the best one,
# or their weight average when it validates better), then judged by the crowd. Needs make data FERPLUS=...
train-ferplus: setup
	$(PY) train.py --data $(FERPLUS_DATA) --arch vgg --epochs 20 --init-from models/emotion_model.h5 \
		--learning-rate 5e-4 --schedule cosine --label-smoothing 0 --erase 0.5 --served-share 0.5 --out models/ferplus_model.h5
	$(PY) train.py --data $(FERPLUS_DATA) --arch vgg --epochs 8 --init-from models/ferplus_model.h5 \
		--learning-rate 2e-4 --schedule cyclic --average-weights --label-smoothing 0 --erase 0.5 --served-share 0.5 \
		--out models/ferplus_model.h5
	$(PY) evaluate.py --model models/ferplus_model.h5 --data $(FERPLUS_DATA) --photo-path --record-crowd

evaluate: setup
	$(PY) evaluate.py --model models/emotion_model.h5 --model models/baseline_cnn.h5 --data $(DATA)/test --photo-path

# Every emotion model judged by the crowd on FER+'s test faces, the figures kept in their cards (the Models page).
evaluate-crowd: setup
	$(PY) evaluate.py --model models/ferplus_model.h5 --model models/emotion_model.h5 --model models/baseline_cnn.h5 \
		--data $(FERPLUS_DATA) --photo-path --record-crowd

# FER2013 (make data FER2013=/path/to/fer2013.csv, the Kaggle archive or its folder), FER+ (make data
# FERPLUS=/path/to/FERPlus/data, or the folder of fer2013new.csv beside fer2013.csv) and people's photos
# (make data PEOPLE=/path/to/one-folder-per-person) go where the tools look; without any, where to get FER2013.
data: setup
	$(PY) scripts/get_data.py $(if $(FER2013),--fer2013 "$(FER2013)") $(if $(FERPLUS),--ferplus "$(FERPLUS)") \
		$(if $(PEOPLE),--people "$(PEOPLE)")

# The walkthrough in notebooks/ (teaching the CNN by experiment), opened in JupyterLab with the project's
# environment; notebooks-html runs every notebook with its defaults (FER2013 in place; 8 to 11 minutes on a
# 2-core CPU) and writes them as HTML in reports/notebooks/, for reading without Jupyter.
notebooks: setup-notebooks
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/01_fer2013.ipynb

notebooks-html: setup-notebooks
	$(PY) scripts/notebooks.py html --out reports/notebooks

# $(SITE) only if make site wrote it (the mark is scripts/make_site.py's MARK).
clean:
	rm -rf $(VENV) reports visualizations .pytest_cache build
	@if [ -f "$(SITE)/.written-by-make-site" ]; then rm -rf "$(SITE)"; fi
