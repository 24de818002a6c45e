"""What ``edgecnn run`` shows on the terminal while it runs: per-result lines, a progress bar, a live status line."""

from __future__ import annotations

import time

from edgecnn.console import console, err_console, info, interactive, is_quiet, printable, rich_safe
from edgecnn.runtime.pipeline import Result, Stats
from edgecnn.runtime.sources import Source


def fmt_ms(value: float) -> str:
    """Milliseconds with enough digits for sub-millisecond models (``0.041ms``, ``1.2ms``), never ``0.0ms``."""
    return f"{value:.3f}ms" if value < 1 else f"{value:.1f}ms"


class Reporter:
    """Per-result lines, a progress bar (finite sources) or a status line (live sources)."""

    def __init__(self, source: Source, stats: Stats, print_results: bool) -> None:
        self.source = source
        self.stats = stats
        self.print_results = print_results
        self.progress = None
        self.task = None
        self.last = 0.0
        self.tty = interactive() and not is_quiet()
        if self.tty:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            if source.live:
                self.progress = Progress(TextColumn("{task.description}"), console=err_console.rich, transient=False)
            else:
                self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                         TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
                                         console=err_console.rich)
            self.task = self.progress.add_task(rich_safe(source.name) if not source.live else "starting", total=source.total,
                                               status="")
            self.progress.start()

    def status(self, last: Result | None = None) -> str:
        s = self.stats
        text = (f"{s.fps():.1f} FPS | pre {fmt_ms(s.mean('pre'))} infer {fmt_ms(s.mean('infer'))} "
                f"post {fmt_ms(s.mean('post'))}")
        if self.source.live:
            text += f" | dropped {self.source.dropped}"
        if last is not None and last.ok:
            text += f" | {rich_safe(last.label) if self.progress is not None else printable(last.label)} {last.score:.2f}"
        return text

    def update(self, r: Result, position: int) -> None:
        if self.print_results and not is_quiet():
            total = f"/{self.source.total}" if self.source.total else ""
            if r.ok:
                tops = ", ".join(f"{printable(lbl)} {s:.2f}" for lbl, s in r.topk)
                line = f"{position}{total} {printable(r.source)}: {tops}, {fmt_ms(r.infer_ms)}"
            else:  # data printed escaped: a newline or an escape sequence in a name never forges or paints a line
                line = f"{position}{total} {printable(r.source)}: skipped ({printable(r.error)})"
            (self.progress.console if self.progress else console).print(line, markup=False, highlight=False)
        now = time.perf_counter()
        if self.progress is not None:
            if self.source.live:
                if now - self.last >= 0.5:
                    self.progress.update(self.task, description=self.status(r))
                    self.last = now
            else:
                if now - self.last >= 0.5:
                    self.progress.update(self.task, advance=1, status=self.status())
                    self.last = now
                else:
                    self.progress.update(self.task, advance=1)
        elif self.source.live and not is_quiet() and now - self.last >= 5.0:
            info(self.status(r))
            self.last = now

    def close(self) -> None:
        if self.progress is not None:
            if self.source.live:
                self.progress.update(self.task, description=self.status())
            else:
                self.progress.update(self.task, status=self.status())  # the final figures, as the summary says
            self.progress.stop()
