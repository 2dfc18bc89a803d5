"""The Tk widgets of the desktop window; what they show comes from :mod:`desktop.session`.

Layout: a toolbar (open a picture, the camera, the model, the warning threshold), the
picture on the left with every face boxed, the selected face's verdict and the
explanation tabs on the right, a status bar below. A click on a layer tab's figure
opens the operation behind that position in a window of its own. Tk may only be used from the thread
that created it, so slow work (loading a model, predicting, computing a figure) goes
to a :class:`~desktop.worker.Worker`, and :meth:`Window._poll` takes the results
back every ``POLL_MS`` on the Tk thread, together with the camera's newest frame.
"""
import os
import tkinter as tk
from tkinter import filedialog, messagebox, ttk

import cv2
from matplotlib.backends.backend_tkagg import FigureCanvasTkAgg
from PIL import Image, ImageTk

from desktop.calibration import CalibrationControls
from desktop.camera import Camera
from desktop.session import CLASS_TABS, LAYER_TABS, TABS, Session
from desktop.worker import Worker
from utils.cli import one_line
from utils.defaults import IDENTITY_DATA, IDENTITY_MODEL, project_path, THRESHOLD
from utils.media.decode import read_image
from utils.serving import identity
from utils.serving.model_file import find_models, LoadedModel
from utils.train.jobs import JobBusy, TrainingJob

POLL_MS = 30
PICTURE_SIZE = (520, 520)   # the picture's box on screen, in pixels
FIGURE_SIZE = (660, 470)    # each tab's figure area, in pixels
IMAGE_TYPES = [("Images", "*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff"), ("All files", "*")]
WARNING_COLOUR = "#b34700"
LAYER_HINT = "click a pixel (or a bar) to see how its number was computed"


def make_root():
    """A Tk root that accepts dropped files when the optional ``tkinterdnd2`` is installed."""
    try:
        from tkinterdnd2 import TkinterDnD
    except ImportError:
        return tk.Tk()
    return TkinterDnD.Tk()


class Window:
    def __init__(self, model_path, root=None, detector=None, identity_model=None):
        """``identity_model``: the identity model the Identity tab compares with and training writes
        (default: the project's, as the site's)."""
        self.root = root or make_root()
        self.root.title("EmoDetect-Pro")
        self.session = Session(detector=detector)
        self.worker = Worker()
        self.camera = None
        self.models_folder = os.path.dirname(os.path.abspath(model_path))
        self.session.identity = identity.model_file(identity_model or project_path(IDENTITY_MODEL))
        self.training = TrainingJob()  # "Train identity model" on the Identity tab; a local app: always on
        self._training_state = self.training.status()["state"]  # an earlier run's end is not news
        self._sample = -1            # the identity test photo shown last
        self.model_paths = {}        # chooser entry -> model path
        self.figures = {}            # tab -> the Figure it shows
        self._canvases = {}          # tab -> its FigureCanvasTkAgg
        self._stale = set(TABS)      # tabs whose figure no longer matches the picture or model
        self._requests = {}          # tab -> number of its newest figure request
        self.operation_window = None  # the Toplevel showing the operation behind a clicked position
        self.operation_text = None
        self._frame_pending = False  # a webcam frame is being predicted
        self._photo = None           # Tk drops an image nobody references
        self._picture_scale = 1.0
        self._ready_text = "Ready"   # what the status bar says once background work is done
        self.closed = False
        # Dialogs go through here so tests can record them instead of blocking on them.
        self.show_error = messagebox.showerror

        self._build_toolbar()
        self.status = tk.StringVar(self.root, value="Starting")
        ttk.Label(self.root, textvariable=self.status, relief="sunken", anchor="w", padding=(6, 2)).pack(
            side="bottom", fill="x")  # packed before the body, so a small window squeezes the body instead
        self._build_body()
        self.root.protocol("WM_DELETE_WINDOW", self.close)
        self._poll_job = self.root.after(POLL_MS, self._poll)
        self.load_model(model_path)

    # ---- building -------------------------------------------------------------------
    def _build_toolbar(self):
        bar = ttk.Frame(self.root, padding=4)
        bar.pack(side="top", fill="x")
        ttk.Button(bar, text="Open image...", command=self.open_dialog).pack(side="left")
        self.camera_button = ttk.Button(bar, text="Start camera", command=self.toggle_camera)
        self.camera_button.pack(side="left", padx=(12, 2))
        ttk.Label(bar, text="camera").pack(side="left")
        self.camera_index = tk.StringVar(self.root, value="0")
        ttk.Spinbox(bar, from_=0, to=9, width=3, textvariable=self.camera_index).pack(side="left")
        ttk.Label(bar, text="Model").pack(side="left", padx=(12, 2))
        self.model_var = tk.StringVar(self.root)
        self.model_chooser = ttk.Combobox(bar, textvariable=self.model_var, state="readonly", width=24)
        self.model_chooser.bind("<<ComboboxSelected>>",
                                lambda _: self.load_model(self.model_paths[self.model_var.get()]))
        self.model_chooser.pack(side="left")
        ttk.Label(bar, text="Warn under").pack(side="left", padx=(12, 2))
        self.threshold = tk.DoubleVar(self.root, value=THRESHOLD * 100)
        ttk.Scale(bar, from_=0, to=100, variable=self.threshold, length=140,
                  command=lambda _: self.set_threshold(self.threshold.get() / 100)).pack(side="left")
        self.threshold_text = ttk.Label(bar, width=5, text=f"{THRESHOLD:.0%}")
        self.threshold_text.pack(side="left")
        row = ttk.Frame(self.root, padding=(4, 0, 4, 4))   # a second row: Calibrate to me and the read-out
        row.pack(side="top", fill="x")
        self.calibration = CalibrationControls(self, row)

    def _build_body(self):
        body = ttk.Frame(self.root, padding=4)
        body.pack(side="top", fill="both", expand=True)
        self.picture = tk.Canvas(body, width=PICTURE_SIZE[0], height=PICTURE_SIZE[1], background="#202020",
                                 highlightthickness=0)
        self.picture.pack(side="left", anchor="n")
        self.picture.create_text(PICTURE_SIZE[0] // 2, PICTURE_SIZE[1] // 2, fill="#c0c0c0",
                                 text="Open an image or start the camera")
        self.picture.bind("<Button-1>", self._clicked_picture)
        self._accept_drops(self.picture)

        side = ttk.Frame(body, padding=(8, 0, 0, 0))
        side.pack(side="left", fill="both", expand=True)
        self.face_var = tk.StringVar(self.root)
        self.face_chooser = ttk.Combobox(side, textvariable=self.face_var, state="readonly", width=40)
        self.face_chooser.bind("<<ComboboxSelected>>", lambda _: self.select_face(self.face_chooser.current()))
        self.face_chooser.pack(anchor="w")
        self.headline = ttk.Label(side, text="No picture yet", font=("TkDefaultFont", 16, "bold"))
        self.headline.pack(anchor="w", pady=(4, 0))
        self.warning = ttk.Label(side, text="", foreground=WARNING_COLOUR, wraplength=FIGURE_SIZE[0])
        self.warning.pack(anchor="w")

        self.notebook = ttk.Notebook(side)
        self.notebook.pack(fill="both", expand=True, pady=4)
        self.tab_frames, self.choosers, self._areas = {}, {}, {}
        for tab in TABS:
            frame = ttk.Frame(self.notebook, padding=4)
            self.notebook.add(frame, text=tab)
            self.tab_frames[tab] = frame
            controls = ttk.Frame(frame)
            controls.pack(fill="x")
            if tab in LAYER_TABS or tab in CLASS_TABS:
                ttk.Label(controls, text="layer" if tab in LAYER_TABS else "class").pack(side="left")
                chooser = ttk.Combobox(controls, state="readonly", width=24)
                chooser.bind("<<ComboboxSelected>>", lambda _, tab=tab: self.refresh_tab(tab))
                chooser.pack(side="left", padx=4)
                self.choosers[tab] = chooser
            if tab in LAYER_TABS:
                ttk.Label(controls, text=LAYER_HINT).pack(side="left", padx=8)
            if tab == "Model":
                self.card_text = ttk.Label(controls, text="", justify="left", wraplength=900)  # the command is long
                self.card_text.pack(side="left")
            if tab == "Identity":
                self._build_identity_controls(controls)
            area = ttk.Frame(frame, width=FIGURE_SIZE[0], height=FIGURE_SIZE[1])
            area.pack_propagate(False)  # a big figure must not grow the window
            area.pack(fill="both", expand=True)
            self._areas[tab] = area
        self.notebook.bind("<<NotebookTabChanged>>", lambda _: self._tab_shown())
        ttk.Button(side, text="Save figure...", command=self.save_figure).pack(anchor="e")

    def _build_identity_controls(self, controls):
        """Step through the identity test photos; train the identity model with a progress bar."""
        ttk.Button(controls, text="Next test image", command=self.next_identity_sample).pack(side="left")
        self.train_button = ttk.Button(controls, text="Train identity model", command=self.train_identity)
        self.train_button.pack(side="left", padx=(12, 4))
        self.train_progress = ttk.Progressbar(controls, maximum=1.0, length=140)
        self.train_progress.pack(side="left")
        self.train_text = ttk.Label(controls, text="")
        self.train_text.pack(side="left", padx=4)

    def _accept_drops(self, widget):
        """Dropped image files open like the file dialog's; silently absent without tkinterdnd2."""
        if not hasattr(widget, "drop_target_register"):
            return
        from tkinterdnd2 import DND_FILES
        widget.drop_target_register(DND_FILES)
        widget.dnd_bind("<<Drop>>", self._dropped)

    def _dropped(self, event):
        """tkdnd gives the dropped paths as a Tcl list (braces around names with spaces); open the first."""
        paths = self.root.tk.splitlist(event.data)
        if paths:
            self.open_path(paths[0])

    # ---- background work --------------------------------------------------------------
    def _poll(self):
        """Hand finished background work to its callbacks, and the newest webcam frame to the model."""
        self.worker.poll()
        if self.camera is not None and self.camera.running and not self._frame_pending:
            frame = self.camera.latest()
            if frame is not None:
                self._frame_pending = True
                self.worker.submit(lambda: (frame, self.session.predict_frame(frame)),
                                   self._show_live, self._failed("Camera"))
        elif self.camera is not None and self.camera.lost:
            self.stop_camera()
            self.show_error("Camera", f"camera {self.camera_index.get()} stopped sending frames")
        self._follow_training()
        self._poll_job = self.root.after(POLL_MS, self._poll)

    def _ready(self, text):
        """Say what is on screen; the status bar comes back to this after each background job."""
        self._ready_text = text
        self.status.set(text)

    def _failed(self, what):
        """An error callback: a dialog with the one-line reason, and the status bar says so too."""
        def report(error):
            self._frame_pending = False
            message = one_line(error)
            self.status.set(f"{what} failed: {message}")
            self.show_error(what, message)
        return report

    # ---- model ------------------------------------------------------------------------
    def load_model(self, path):
        """Load a model in the background; the picture, if any, is predicted again with it."""
        self.status.set(f"Loading model {os.path.basename(path)}...")
        image = self.session.image

        def job():
            # On the worker, so jobs queued after this one already use the new model.
            self.session.use_model(LoadedModel.load(path))
            return None if image is None else self.session.predict(image)

        self.worker.submit(job, lambda found: self._model_ready(image, found), self._model_failed)

    def _model_ready(self, image, found):
        model = self.session.model
        self.model_paths = {os.path.basename(p): p for p in find_models(self.models_folder).values()}
        self.model_paths.setdefault(os.path.basename(model.path), model.path)
        self.model_chooser["values"] = sorted(self.model_paths)
        self.model_var.set(os.path.basename(model.path))
        self.card_text["text"] = self.session.card_summary()
        for tab, kind in LAYER_TABS.items():
            self.choosers[tab]["values"] = self.session.layer_names(kind)
        for tab in CLASS_TABS:
            self.choosers[tab]["values"] = self.session.classes
        for chooser in self.choosers.values():
            chooser.set(chooser["values"][0] if chooser["values"] else "")
        if image is not None:
            self.session.show(image, found)
        if self.camera is not None:
            self.session.start_live()  # the webcam's tracker follows the new model from now on
        self.calibration.update()   # a read-out belongs to the model it was made with: it went with it
        self._ready(f"Model {model.name} ready. Open an image or start the camera.")
        self._picture_changed()

    def _model_failed(self, error):
        if self.session.model is not None:
            self.model_var.set(os.path.basename(self.session.model.path))
        self._failed("Loading the model")(error)

    # ---- picture ----------------------------------------------------------------------
    def open_dialog(self):
        path = filedialog.askopenfilename(parent=self.root, title="Open an image", filetypes=IMAGE_TYPES)
        if path:
            self.open_path(path)

    def open_path(self, path, true_person=None):
        """Read and analyse an image file in the background (the camera stops first).

        ``true_person``: the picture is an identity test photo of that person.
        """
        if self.camera is not None:
            self.stop_camera()
        self.status.set(f"Reading {os.path.basename(path)}...")

        def job():
            image = read_image(path)
            return image, self.session.predict(image)

        self.worker.submit(job, lambda result: self._show_still(path, *result, true_person),
                           self._failed("Opening the image"))

    def _show_still(self, path, image, found, true_person=None):
        self.session.show(image, found)
        self.session.true_person = true_person
        count = sum(not face["whole_image"] for face in found)
        self._ready(f"{os.path.basename(path)}: " + (f"{count} face{'s' * (count != 1)}" if count else
                                                     "no face found, so the whole picture was classified"))
        self._picture_changed()

    def _picture_changed(self):
        """The picture, faces or model changed: redraw the picture and verdict, and every tab in turn."""
        self._stale = set(TABS)
        self._face_changed()

    def _face_changed(self):
        """Class explanations start from the class the model chose; the shown tab is drawn again."""
        if self.session.face is not None:
            for tab in CLASS_TABS:
                self.choosers[tab].set(self.session.face["label"])
        self._draw_picture()
        self.refresh_tab()

    def _draw_picture(self):
        self.face_chooser["values"] = self.session.face_choices()
        if self.session.face is not None:
            self.face_chooser.current(self.session.selected)
        else:
            self.face_var.set("")
        headline, warning = self.session.verdict()
        self.headline["text"], self.warning["text"] = headline, warning
        if self.session.image is None:
            return
        rgb = cv2.cvtColor(self.session.annotated_image(), cv2.COLOR_BGR2RGB)
        picture = Image.fromarray(rgb)
        self._picture_scale = min(PICTURE_SIZE[0] / picture.width, PICTURE_SIZE[1] / picture.height)
        picture = picture.resize((max(1, round(picture.width * self._picture_scale)),
                                  max(1, round(picture.height * self._picture_scale))), Image.LANCZOS)
        self._photo = ImageTk.PhotoImage(picture, master=self.root)
        self.picture.delete("all")
        self.picture.create_image(0, 0, image=self._photo, anchor="nw")

    def reread(self):
        """Read the still picture again, with the read-out now chosen (the camera's next frame does it itself)."""
        image = self.session.image
        if image is None or self.camera is not None:
            return

        def show(found):
            self.session.show(image, found)
            self._picture_changed()
        self.worker.submit(lambda: self.session.predict(image), show, self._failed("Reading the picture"))

    def _clicked_picture(self, event):
        index = self.session.face_at(event.x / self._picture_scale, event.y / self._picture_scale)
        if index is not None:
            self.select_face(index)

    def select_face(self, index):
        self.session.select(index)
        self._stale = set(TABS) - {"Model"}
        self._face_changed()

    def set_threshold(self, threshold):
        self.threshold_text["text"] = f"{threshold:.0%}"
        self.session.set_threshold(threshold)
        if self.session.predictions:
            self._draw_picture()

    # ---- tabs -------------------------------------------------------------------------
    @property
    def current_tab(self):
        return self.notebook.tab(self.notebook.select(), "text")

    def _tab_shown(self):
        if self.current_tab in self._stale:
            self.refresh_tab()

    def refresh_tab(self, tab=None):
        """Compute the tab's figure in the background (only the shown tab: the others wait until shown)."""
        tab = tab or self.current_tab
        if self.session.model is None:
            return
        self._stale.discard(tab)
        request = self._requests.get(tab, 0) + 1
        self._requests[tab] = request
        option = self.choosers[tab].get() if tab in self.choosers else None
        layer = self.session.layer_for(tab, option) if tab in LAYER_TABS else None
        self.status.set(f"Drawing {tab}...")
        self.worker.submit(lambda: self.session.figure(tab, option),
                           lambda figure: self._show_figure(tab, figure, request, layer), self._failed(f"Drawing {tab}"))

    def _show_figure(self, tab, figure, request, layer=None):
        if request != self._requests[tab] or self.closed:
            return  # a newer request for this tab is on its way
        old = self._canvases.pop(tab, None)
        if old is not None:
            old.get_tk_widget().destroy()
        area = self._areas[tab]
        # Drawn once, at the area's size: a 128-channel grid at its own size would be drawn twice as large.
        figure.set_size_inches(max(area.winfo_width(), 100) / figure.dpi, max(area.winfo_height(), 100) / figure.dpi)
        canvas = FigureCanvasTkAgg(figure, master=area)
        canvas.get_tk_widget().pack(fill="both", expand=True)
        canvas.draw_idle()
        if layer is not None and self.session.face is not None:
            canvas.mpl_connect("button_press_event", lambda event: self._clicked_figure(layer, event))
        self._canvases[tab], self.figures[tab] = canvas, figure
        if not self.worker.busy:
            self.status.set(self._ready_text)

    # ---- the operation behind a position -------------------------------------------------
    def _clicked_figure(self, layer, event):
        """A click on a layer's figure: the operation behind the position under it, computed in the background."""
        if event.inaxes is None or event.xdata is None:
            return
        x, y = event.xdata, event.ydata
        self.status.set(f"Computing {layer} at the place clicked...")
        self.worker.submit(lambda: self._operation_at(layer, x, y), lambda lines: self.show_operation(lines, layer),
                           self._failed("The operation"))

    def _operation_at(self, layer, x, y):
        """On the worker (it may run the model): the operation's lines at a point of the figure, or None."""
        position = self.session.position_in_figure(layer, x, y)
        return None if position is None else self.session.operation_lines(layer, *position)

    def show_operation(self, lines, layer=""):
        """The operation's numbers in a window of their own (one, reused), scrollable and read-only;
        ``lines`` None: the click fell between the maps."""
        if lines is None:
            self.status.set(f"That is between the maps of {layer}: {LAYER_HINT}")
            return
        if self.operation_window is None or not self.operation_window.winfo_exists():
            self.operation_window = tk.Toplevel(self.root)
            self.operation_window.geometry("900x560")
            down = ttk.Scrollbar(self.operation_window, orient="vertical")
            across = ttk.Scrollbar(self.operation_window, orient="horizontal")
            self.operation_text = tk.Text(self.operation_window, wrap="none", font="TkFixedFont", padx=8, pady=6,
                                          yscrollcommand=down.set, xscrollcommand=across.set)
            down.configure(command=self.operation_text.yview)
            across.configure(command=self.operation_text.xview)
            down.pack(side="right", fill="y")
            across.pack(side="bottom", fill="x")
            self.operation_text.pack(side="left", fill="both", expand=True)
        self.operation_window.title(lines[0])
        self.operation_text.configure(state="normal")
        self.operation_text.delete("1.0", "end")
        self.operation_text.insert("1.0", "\n".join(lines))
        self.operation_text.configure(state="disabled")
        self.operation_window.lift()
        if not self.worker.busy:
            self.status.set(self._ready_text)

    def save_figure(self, path=None):
        """Write the shown tab's figure as a PNG (asking where, unless ``path`` is given)."""
        tab = self.current_tab
        figure = self.figures.get(tab)
        if figure is None:
            self.status.set(f"Nothing to save yet in {tab}")
            return None
        path = path or filedialog.asksaveasfilename(parent=self.root, defaultextension=".png",
                                                    initialfile=f"{tab.lower().replace(' ', '_')}.png",
                                                    filetypes=[("PNG image", "*.png")])
        if path:
            figure.savefig(path, dpi=150, bbox_inches="tight")
            self.status.set(f"Saved {tab} to {path}")
        return path

    # ---- identity ---------------------------------------------------------------------
    def next_identity_sample(self):
        """Open the next identity test photo, its true person remembered for the Identity tab."""
        samples = self.session.identity_samples()
        if not samples:
            self.show_error("Identity", "no identity test photos: train the identity model first")
            return
        self._sample = (self._sample + 1) % len(samples)
        self.notebook.select(self.tab_frames["Identity"])
        self.open_path(*samples[self._sample])

    def train_identity(self, data=None, epochs=identity.TRAIN_EPOCHS):
        """Train the identity model in a child process; :meth:`_follow_training` shows its progress."""
        data = data or project_path(IDENTITY_DATA)
        try:
            self.training.start(identity.training_args(data, epochs), self.session.identity.path)
        except JobBusy as error:  # started from the site, say: its progress shows here too
            self.show_error("Training the identity model", str(error))
            return
        self.train_button.state(["disabled"])

    def _follow_training(self):
        """Progress bar and message from the training job; when it ends, the Identity tab is drawn again."""
        status = self.training.status()
        if status["state"] == "idle":
            return
        self.train_progress["value"] = status["progress"]
        self.train_text["text"] = status["message"]
        if status["state"] != self._training_state:
            self._training_state = status["state"]
            if status["state"] == "running":  # this window's run, or one the site started
                self.train_button.state(["disabled"])
            elif status["state"] == "failed":
                self.train_button.state(["!disabled"])
                self.show_error("Training the identity model", status["message"])
            elif status["state"] == "finished":
                self.train_button.state(["!disabled"])
                self._ready("Identity model trained and in use")
                self._stale.add("Identity")
                if self.current_tab == "Identity":
                    self.refresh_tab("Identity")

    # ---- camera -----------------------------------------------------------------------
    def toggle_camera(self):
        if self.camera is None:
            self.start_camera()
        else:
            self.stop_camera()

    def start_camera(self):
        """Open the chosen camera in the background; frames then flow through :meth:`_poll`."""
        try:
            index = int(self.camera_index.get())
        except ValueError:
            self.show_error("Camera", f"'{self.camera_index.get()}' is not a camera number (0, 1, 2 ...)")
            return
        if self.session.model is None:
            self.show_error("Camera", "no model is loaded yet")
            return
        camera = self.camera = Camera(index)
        self.session.start_live()
        self.camera_button["text"] = "Stop camera"
        self.calibration.update()
        self.status.set(f"Opening camera {index}...")
        self.worker.submit(camera.start, lambda reading: self._camera_started(camera, reading),
                           lambda error: self._camera_failed(camera, error))

    def _camera_started(self, camera, reading):
        if reading and camera is self.camera:  # else Stop (or a picture) came while it opened: it is released
            self._ready(f"Camera {camera.index} live; tabs other than Probabilities update when it stops")

    def _camera_failed(self, camera, error):
        if camera is not self.camera:
            return  # stopped while it was opening: the failure no longer matters
        self.camera = None
        self.session.stop_live()
        self.camera_button["text"] = "Start camera"
        self.calibration.update()
        self._failed("Camera")(error)

    def _show_live(self, result):
        self._frame_pending = False
        if self.camera is None:
            return  # a frame that was on its way when the camera stopped
        self.session.show(*result)
        self._stale = set(TABS) - {"Model"}
        self.calibration.frame_shown()
        self._draw_picture()
        if self.current_tab == "Probabilities":
            self.refresh_tab()

    def stop_camera(self):
        """Release the camera; the last frame stays, and every tab explains it."""
        camera, self.camera = self.camera, None
        if camera is not None:
            camera.stop()
        self.session.stop_live()
        self.camera_button["text"] = "Start camera"
        self.calibration.update()
        self._ready("Camera stopped; the tabs explain its last frame")
        if self.session.image is not None:
            self._picture_changed()

    # ---- closing ----------------------------------------------------------------------
    def close(self):
        """Release the camera, finish the background thread, then destroy the window."""
        if self.closed:
            return
        self.closed = True
        if self.camera is not None:
            self.camera.stop()
            self.camera = None
        self.root.after_cancel(self._poll_job)
        self.training.stop()
        self.worker.close()
        for canvas in self._canvases.values():
            canvas.get_tk_widget().destroy()
        self._canvases.clear()
        self.figures.clear()
        self.root.destroy()

    def mainloop(self):
        self.root.mainloop()
