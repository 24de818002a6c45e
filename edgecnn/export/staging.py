"""An export is built in a hidden staging folder and published whole, or not at all (:class:`Staging`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from edgecnn.export.report import REPORT_JSON, REPORT_MD

#: Sub-folder of an export folder holding artifacts that failed their parity gate (never beside the report).
REJECTED_DIR = "rejected"


class Staging:
    """An export built in a hidden folder beside ``out_dir`` and published whole, or not at all.

    The staging folder starts as hard links of what ``out_dir`` holds that this export does not rewrite (earlier
    artifacts, files of the user); :meth:`publish` swaps it in atomically (:func:`edgecnn.fileio.publish_dir`).
    A failure or Ctrl-C removes it; a SIGKILL leaves it hidden and the next export removes it. So ``out_dir`` is at
    every moment either as it was or the finished, checked export: never artifacts without their report.
    When ``out_dir`` holds the working directory, files are moved in one by one instead (report last).
    """

    def __init__(self, out_dir: Path, rewritten: set[str]) -> None:
        self.out_dir = out_dir
        self.rewritten = rewritten
        self.dir = Path()
        self.rejected: list[Path] = []

    def __enter__(self) -> Staging:
        from edgecnn.fileio import link_tree, staging_dir

        target = Path(os.path.realpath(self.out_dir))
        self.target = target
        self.dir = staging_dir(target)
        self.whole = not _holds_cwd(target)
        if self.whole and target.is_dir():
            for entry in target.iterdir():
                if entry.name in self.rewritten:
                    continue
                if entry.name == REJECTED_DIR and entry.is_dir():
                    keep = [e for e in entry.iterdir() if e.name not in self.rewritten]
                    if keep:
                        (self.dir / REJECTED_DIR).mkdir(exist_ok=True)
                        for e in keep:
                            link_tree(e, self.dir / REJECTED_DIR / e.name)
                    continue
                link_tree(entry, self.dir / entry.name)
        return self

    def reject(self, path: Path) -> None:
        dest = self.dir / REJECTED_DIR
        dest.mkdir(exist_ok=True)
        os.replace(path, dest / path.name)
        self.rejected.append(dest / path.name)

    def publish(self) -> None:
        from edgecnn.fileio import publish_dir

        if self.whole:
            publish_dir(self.dir, self.target)
            return
        self.target.mkdir(parents=True, exist_ok=True)
        for name in (REPORT_JSON, REPORT_MD):  # the old report goes first: never a report over other artifacts
            (self.target / name).unlink(missing_ok=True)
        last = [self.dir / REPORT_MD, self.dir / REPORT_JSON]
        for entry in [*sorted(p for p in self.dir.iterdir() if p not in last), *last]:
            if not entry.exists():
                continue
            dest = self.target / entry.name
            if entry.is_dir() and dest.is_dir():
                if entry.name == REJECTED_DIR:
                    for e in entry.iterdir():
                        os.replace(e, dest / e.name) if not e.is_dir() else _replace_dir(e, dest / e.name)
                    continue
                shutil.rmtree(dest)
            os.replace(entry, dest)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None or self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)



def _replace_dir(src: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(src, dest)


def _holds_cwd(folder: Path) -> bool:
    try:
        cwd = Path(os.getcwd()).resolve()
    except OSError:
        return False
    return cwd == folder or folder in cwd.parents


__all__ = ["REJECTED_DIR", "Staging"]
