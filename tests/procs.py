"""What the suites that run edgecnn in a child process share: the finished process (tests/ is on sys.path)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Done:
    """A finished child process: its command, exit status and output."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr
