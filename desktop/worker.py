"""One background thread for the window's slow work, with results handed back to Tk.

Tk may only be touched from the thread that created it, so a job runs here and its
callback is queued; the window drains the queue with ``root.after`` (see
:meth:`Worker.poll`). One thread is enough: jobs are a prediction or a figure, and
running them in order means a newer request never overtakes an older one.
"""
import queue
from concurrent.futures import ThreadPoolExecutor


class Worker:
    def __init__(self):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="desktop-worker")
        self._finished = queue.SimpleQueue()
        self.pending = 0

    @property
    def busy(self):
        return self.pending > 0

    def submit(self, job, on_done, on_error):
        """Run ``job()`` in the background; ``on_done(result)`` or ``on_error(exception)`` runs in :meth:`poll`."""
        self.pending += 1
        future = self._executor.submit(job)
        future.add_done_callback(lambda done: self._finished.put((done, on_done, on_error)))

    def poll(self):
        """Call the callbacks of finished jobs (from the Tk thread); returns how many ran."""
        count = 0
        while True:
            try:
                future, on_done, on_error = self._finished.get_nowait()
            except queue.Empty:
                return count
            self.pending -= 1
            count += 1
            if future.cancelled():
                continue
            error = future.exception()
            if error is None:
                on_done(future.result())
            else:
                on_error(error)

    def close(self):
        """Drop queued jobs and wait for the running one, so nothing outlives the window."""
        self._executor.shutdown(wait=True, cancel_futures=True)
