"""The desktop window's "Calibrate to me": its buttons, the choice of expressions and the result.

The sequence itself (countdown, frames, the fit, the before-and-after check) is
:mod:`utils.live.calibration`'s, run by :class:`desktop.session.Session` on the webcam's frames;
this module only offers it and shows what it gives: the prompt is drawn under the picture by the
session, the table of the held-back frames opens in a window of its own, and the buttons return to
the model as shipped, save the read-out as a small JSON file or open one saved before.
"""
import tkinter as tk
from tkinter import filedialog, ttk

from utils.live.calibration import NEUTRAL, SUGGESTED, expressions_to_show

READOUT_TYPES = [("Read-out", "*.json"), ("All files", "*")]


class CalibrationControls:
    def __init__(self, window, bar):
        """Build the buttons into the toolbar row ``bar`` of ``window`` (a :class:`desktop.window.Window`)."""
        self.window = window
        self.dialog = None        # the Toplevel choosing the expressions
        self.choices = {}         # expression -> its BooleanVar in the dialog
        self.result_window = None
        self.result_text = None
        ttk.Label(bar, text="The last layer:").pack(side="left")
        self.calibrate_button = ttk.Button(bar, text="Calibrate to me...", command=self.choose)
        self.calibrate_button.pack(side="left", padx=(6, 2))
        self.shipped_button = ttk.Button(bar, text="As shipped", command=self.as_shipped)
        self.shipped_button.pack(side="left")
        self.open_button = ttk.Button(bar, text="Open read-out...", command=self.open_dialog)
        self.open_button.pack(side="left", padx=(12, 0))
        self.save_button = ttk.Button(bar, text="Save read-out...", command=self.save_dialog)
        self.save_button.pack(side="left")
        self.update()

    @property
    def session(self):
        return self.window.session

    def update(self):
        """Enable what can be done now: calibrate with the camera on, open a read-out with a model, the
        rest with a read-out."""
        self.calibrate_button.state(["!disabled" if self.window.camera is not None else "disabled"])
        self.open_button.state(["!disabled" if self.session.model is not None else "disabled"])
        for button in (self.shipped_button, self.save_button):
            button.state(["!disabled" if self.session.readout is not None else "disabled"])

    def choose(self):
        """Ask which expressions to show besides neutral (those of :data:`SUGGESTED` ticked), then start."""
        if self.dialog is not None and self.dialog.winfo_exists():
            self.dialog.lift()
            return
        classes = self.session.classes
        self.dialog = tk.Toplevel(self.window.root)
        self.dialog.title("Calibrate to me")
        ttk.Label(self.dialog, padding=8, wraplength=360, text=(
            "Show each expression when the window asks: a countdown, then hold it for a few seconds. "
            "Neutral is always asked for. Which others?")).pack(anchor="w")
        self.choices = {}
        for name in classes:
            if name != NEUTRAL:
                self.choices[name] = tk.BooleanVar(self.dialog, value=name in SUGGESTED)
                ttk.Checkbutton(self.dialog, text=name, variable=self.choices[name]).pack(anchor="w", padx=16)
        ttk.Button(self.dialog, text="Start", command=lambda: self.start(
            [name for name, chosen in self.choices.items() if chosen.get()])).pack(pady=8)

    def start(self, chosen):
        """Start the sequence on the camera's next frames with ``chosen`` besides neutral."""
        try:
            expressions = expressions_to_show(self.session.classes, chosen)
            self.session.start_calibration(expressions)
        except ValueError as error:
            self.window.show_error("Calibrate to me", str(error))
            return
        if self.dialog is not None and self.dialog.winfo_exists():
            self.dialog.destroy()
        self.window.status.set(f"Calibrating: {', '.join(expressions)}; follow the line under the picture")

    def frame_shown(self):
        """After each camera frame: when the calibration has just ended, show its table."""
        try:
            result = self.session.calibration_finished()
        except ValueError as error:   # an expression without a face: nothing fitted
            self.window.show_error("Calibrate to me", str(error))
            return
        if result is not None:
            self.show_result(result.table_lines())
            self.window._ready("Calibrated: your faces are now read by your own last layer ('As shipped' returns)")
            self.update()

    def show_result(self, lines):
        """The before-and-after table in a window of its own (one, reused), read-only."""
        if self.result_window is None or not self.result_window.winfo_exists():
            self.result_window = tk.Toplevel(self.window.root)
            self.result_window.title("Calibrate to me: before and after")
            self.result_text = tk.Text(self.result_window, wrap="none", font="TkFixedFont", padx=8, pady=6,
                                       width=90, height=24)
            self.result_text.pack(fill="both", expand=True)
        self.result_text.configure(state="normal")
        self.result_text.delete("1.0", "end")
        self.result_text.insert("1.0", "\n".join(lines))
        self.result_text.configure(state="disabled")
        self.result_window.lift()

    def as_shipped(self):
        self.session.use_readout(None)
        self.window._ready("Faces are read by the model as shipped")
        self.update()
        self.window.reread()

    def open_dialog(self, path=None):
        path = path or filedialog.askopenfilename(parent=self.window.root, title="Open a read-out",
                                                  filetypes=READOUT_TYPES)
        if self._with_file("Open read-out", self.session.open_readout, path):
            self.window._ready(f"Faces are read by the read-out in {path}")
            self.update()
            self.window.reread()

    def save_dialog(self, path=None):
        path = path or filedialog.asksaveasfilename(parent=self.window.root, defaultextension=".json",
                                                    initialfile="readout.json", filetypes=READOUT_TYPES)
        if self._with_file("Save read-out", self.session.save_readout, path):
            self.window.status.set(f"Read-out saved to {path}")

    def _with_file(self, title, action, path):
        """``action(path)``, True when it worked: a cancelled dialog does nothing, and a file that cannot be
        read or written is one line in an error box, so the window goes on as before."""
        if not path:
            return False
        try:
            action(path)
        except (OSError, ValueError) as error:
            self.window.show_error(title, str(error).splitlines()[0])
            return False
        return True
