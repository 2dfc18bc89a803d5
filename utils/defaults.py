"""Every default the front ends share, defined once.

The site, the desktop window and the command-line tools import their default model,
threshold, pixel limit, identity files and class colours from here. Paths are relative
to the project folder; :func:`project_path` makes them absolute, so a tool run from
another folder finds the same files. Nothing here imports TensorFlow: a tool can read
its defaults (for ``--help``) before it loads a model.
"""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODELS_DIR = "models"                                 # every NAME.h5 with its NAME.json card here is offered
EMOTION_MODEL = os.path.join(MODELS_DIR, "emotion_model.h5")     # the shipped model, used when none is named
IDENTITY_MODEL = os.path.join(MODELS_DIR, "identity_model.h5")   # "who it is"; "Train identity model" writes it
FER2013 = os.path.join("dataset", "fer2013")          # train/ and test/ class folders (make data)
FER2013_TEST = os.path.join(FER2013, "test")          # each channel's top test faces (and the Gallery's without FER+)
FERPLUS = os.path.join("dataset", "ferplus")          # FER+: FER2013's faces with ten votes each (make data FERPLUS=...)
FERPLUS_TEST = os.path.join(FERPLUS, "FER2013Valid")  # FER+'s test faces (FER2013's PublicTest) with their votes
IDENTITY_DATA = os.path.join("dataset", "people")     # one folder of photos per person (make data PEOPLE=...)
RUNS_DIR = "runs"                                     # train.py's checkpoints (runs/NAME/) and the training job's state
RUN_STATUS_FILE = "status.json"                       # in runs/NAME/: how far training is, rewritten every epoch
CACHE_DIR = "cache"                                   # what explanations keep between runs (channels' top faces)
BROWSER_DIR = os.path.join("build", "browser")        # each emotion model exported for the browser (make browser-models)
SITE_DIR = "site"                                     # make site: the pages as static files, for any web server

HOST, PORT = "127.0.0.1", 5000   # where the site listens: this computer only, unless told otherwise
THRESHOLD = 0.35          # under this confidence a prediction is flagged "uncertain"
# Largest image accepted (width x height, from the header): a 6000x4000 photo. Decoding one costs
# about 230 MB at most (bench/bench_memory.py); the model only ever sees 48x48 faces.
MAX_PIXELS = 25_000_000

# One colour per class, in the model card's order (FER2013's: angry red, disgust brown, fear
# purple, happy green, sad blue, surprise orange, neutral grey; FER+ adds contempt, pink), the same
# in every figure, the video overlay, the desktop window and the site (which receives this list).
CLASS_PALETTE = ("#d62728", "#8c564b", "#9467bd", "#2ca02c", "#1f77b4", "#ff7f0e", "#7f7f7f",
                 "#e377c2", "#17becf", "#bcbd22")


def project_path(relative):
    """A path of the project, absolute: ``models/emotion_model.h5`` -> ``/.../models/emotion_model.h5``."""
    return relative if os.path.isabs(relative) else os.path.join(ROOT, relative)


def model_name(model_path):
    """A model's name, as the pages, the exports and the training runs call it: ``models/NAME.h5`` -> NAME."""
    return os.path.splitext(os.path.basename(model_path))[0]


def run_dir(model_path, runs=RUNS_DIR):
    """The folder where training the model saved at ``model_path`` keeps its checkpoints and status: runs/NAME/."""
    return os.path.join(runs, model_name(model_path))


def gallery_folder():
    """The Gallery's faces: FER+'s test faces with their ten votes each when they are here, else FER2013's."""
    return FERPLUS_TEST if os.path.isdir(project_path(FERPLUS_TEST)) else FER2013_TEST


def class_colour(index):
    """The ``#rrggbb`` colour of the class at ``index`` in the card's order."""
    return CLASS_PALETTE[index % len(CLASS_PALETTE)]
