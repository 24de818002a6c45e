"""Terminal output shared by every command: messages on stderr, results on stdout.

Rich is imported only when it is needed: when a stream is a terminal (colours, progress bars) or when a
caller asks for a rich object (tables, JSON). Piped and captured output (CI logs, ``| tee``, a service's
journal, ``edgecnn run ... > preds.txt``) is written as plain lines, which keeps a one-image
``edgecnn run`` from paying for Rich's import (issue 12: cold start as a whole process).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from typing import Any

log = logging.getLogger("edgecnn")
# A library adds a NullHandler: without it, Python's last-resort handler would print every warn() a second
# time in scripts that never configured logging. Applications that configure logging still get the records.
log.addHandler(logging.NullHandler())

_quiet = False


def _stream(stderr: bool) -> Any:
    return sys.stderr if stderr else sys.stdout


def _is_terminal(stream: Any) -> bool:
    if os.environ.get("FORCE_COLOR") or os.environ.get("TTY_COMPATIBLE") == "1":
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or exotic streams
        return False


def _width(stream: Any) -> int | None:
    # Piped or captured output (CI logs, `| tee`): rich would squeeze tables into 80 columns; use a wide page.
    return None if _is_terminal(stream) or os.environ.get("COLUMNS") else 160


class LazyConsole:
    """A ``rich.console.Console`` created on first use; plain strings to a non-terminal skip Rich entirely.

    Attribute access (``.file``, ``.is_terminal``, ``.print_json`` ...) goes to the real Console, so code
    written for Rich keeps working; :attr:`rich` returns the Console itself (e.g. for ``Progress(console=)``).
    """

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Any = None

    @property
    def rich(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True,
                                    width=_width(_stream(self._stderr)))
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rich, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:  # e.g. ``console.width = 160``
            setattr(self.rich, name, value)

    def print(self, *objects: Any, markup: bool | None = False, highlight: bool | None = None, end: str = "\n",
              **kwargs: Any) -> None:
        """``Console.print``; plain ``str`` objects printed with ``markup=False`` to a non-terminal bypass Rich.

        Markup is off unless asked for (``markup=True``): printed strings carry paths, labels and names from
        outside, and a ``[/]`` in a run folder's name must neither raise nor style anything (issue 19)."""
        stream = _stream(self._stderr)
        if (self._console is None and not kwargs and markup is False and objects
                and all(isinstance(o, str) for o in objects) and not _is_terminal(stream)):
            write_line(" ".join(objects), stderr=self._stderr, end=end)
            return
        self.rich.print(*objects, markup=markup, highlight=highlight, end=end, **kwargs)


def write_line(text: str, stderr: bool = False, end: str = "\n") -> None:
    """Write ``text`` as is (no markup, no wrapping) and flush, as Rich does after each print."""
    stream = _stream(stderr)
    try:
        stream.write(text + end)
        stream.flush()
    except UnicodeEncodeError:  # a terminal/pipe in a narrow encoding: never crash on a file name
        enc = getattr(stream, "encoding", None) or "ascii"
        stream.write((text + end).encode(enc, "replace").decode(enc))
        stream.flush()


console = LazyConsole()
err_console = LazyConsole(stderr=True)


#: Characters never written raw to a terminal or journal: C0 controls (newline included: a line is one line), DEL,
#: C1 controls (``\x9b`` is a CSI on some terminals), Unicode line separators and bidirectional overrides.
_CONTROL = {**{c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))},
            ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t",
            **{c: f"\\u{c:04x}" for c in (0x2028, 0x2029, 0x200E, 0x200F, *range(0x202A, 0x202F),
                                          *range(0x2066, 0x206A))},
            **{c: f"\\x{c - 0xDC00:02x}" for c in range(0xDC80, 0xDD00)}}  # undecodable bytes of a file name


def printable(text: object) -> str:
    """``text`` safe to print on one line: control characters, escape sequences, line and bidi controls and the
    undecodable bytes of a non-UTF-8 file name are shown escaped (``\\n``, ``\\x1b``, ``\\u202e``, ``\\xff``), and
    credentials are masked (:func:`edgecnn.masking.mask_secrets`). Used for every message line and every piece of
    data (a file name, a label) printed on the console."""
    from edgecnn.masking import mask_secrets

    return mask_secrets(str(text)).translate(_CONTROL)


def rich_safe(text: object) -> str:
    """:func:`printable`, with Rich markup escaped: for data put into a Rich table, progress bar or markup line
    (a label ``[/]`` or ``[link=...]`` is shown as written, never interpreted)."""
    from rich.markup import escape

    return escape(printable(text))


def _styled(tag: str, prefix: str, msg: str) -> None:
    """``prefix msg`` on stderr: coloured through Rich on a terminal, plain otherwise. The message is one line:
    control characters in it (from a file name or a label) are escaped and credentials masked."""
    msg = printable(msg)
    if _is_terminal(sys.stderr) or err_console._console is not None:
        from rich.markup import escape

        err_console.print(f"[{tag}]{prefix}[/{tag}] {escape(msg)}" if prefix else escape(msg), markup=True)
    else:
        write_line(f"{prefix} {msg}" if prefix else msg, stderr=True)


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


def info(msg: str) -> None:
    """Progress/status line on stderr (silenced by --quiet, and in the Python API unless ``verbose=True``); also an
    INFO record of the ``edgecnn`` logger, so ``logging.basicConfig(level=logging.INFO)`` shows it in the API."""
    if not _quiet:
        _styled("", "", msg)
    log.info(msg, extra={PRINTED: not _quiet})


def warn(msg: str) -> None:
    """One yellow warning line on stderr (never silenced)."""
    _styled("yellow", "WARNING", msg)
    log.warning(printable(msg), extra={PRINTED: True})  # a journal or log file gets the same escaped, masked line


#: Marks log records whose message :func:`warn` already printed (the CLI's log handler skips them).
PRINTED = "edgecnn_printed"


def not_printed(record: logging.LogRecord) -> bool:
    """Logging filter: drop records that :func:`warn` already showed on the terminal."""
    return not getattr(record, PRINTED, False)


def error_line(msg: str) -> None:
    """One red error line on stderr."""
    _styled("red", "Error:", msg)


def interactive() -> bool:
    return sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("1", "true")


# ---------------------------------------------------------------------- third-party noise on the native stderr
#: Lines that TensorFlow, absl, oneDNN, CUDA stubs, the TFLite converter and LiteRT print from C++ straight to
#: file descriptor 2 on every run, whatever Python's logging says. Shown only with ``--verbose``.
NATIVE_NOISE = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(r"^[IWE]\d{4} [\d:.]+ +\d+ [\w.-]+:\d+\] "),  # absl/glog lines (oneDNN, cudart stub, cuInit, XLA)
    re.compile(r"^INFO: Created TensorFlow Lite (XNNPACK )?delegate"),
    re.compile(r"^INFO: Initialized TensorFlow Lite runtime"),
    re.compile(r"^fully_quantize: \d"),
    re.compile(r"^Estimated count of arithmetic ops"),
    re.compile(r"^To enable the following instructions: .* rebuild TensorFlow"),
    re.compile(r"^WARNING: Logging before InitGoogleLogging"),
)

_native: dict[str, object] = {}


def quiet_native_stderr() -> bool:
    """Filter what C/C++ libraries write to file descriptor 2 for the rest of the process (the CLI calls this).

    Python's own ``sys.stderr`` is moved to a duplicate of the original descriptor, so Rich, warnings and
    tracebacks go straight to the terminal (still a TTY for progress bars). Descriptor 2 becomes a pipe read by a
    thread that forwards every line except :data:`NATIVE_NOISE`, at once: a real native error still shows.
    Undone by :func:`restore_native_stderr` (``--verbose`` does, before any library loads). Returns whether
    this call started the filter (False when it already runs or cannot).
    """
    if _native or not hasattr(os, "dup2"):
        return False
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        read_fd, write_fd = os.pipe()
    except OSError:
        return False
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    python_err = open(saved, "w", buffering=1, encoding=encoding, errors="backslashreplace", closefd=False)  # noqa: SIM115

    def pump() -> None:
        with open(read_fd, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    text = line.decode("utf-8", "replace")
                    if not any(p.search(text) for p in NATIVE_NOISE):
                        os.write(saved, line + b"\n")
            if pending:
                os.write(saved, pending)

    thread = threading.Thread(target=pump, name="edgecnn-native-stderr", daemon=True)
    thread.start()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    _native.update(saved=saved, thread=thread, stderr=sys.stderr)
    sys.stderr = python_err
    return True


def restore_native_stderr() -> None:
    """Give descriptor 2 and ``sys.stderr`` back (every line still in the pipe is forwarded first)."""
    if not _native:
        return
    saved, thread = int(_native["saved"]), _native["thread"]  # type: ignore[call-overload]
    sys.stderr.flush()
    sys.stderr = _native["stderr"]  # type: ignore[assignment]
    os.dup2(saved, 2)  # closes the pipe's last write end: the pump sees EOF
    thread.join(timeout=2)  # type: ignore[attr-defined]
    os.close(saved)
    _native.clear()


# ---------------------------------------------------------------------- the Python API: as quiet as the CLI
_owner = {"cli": False}

#: Python loggers of the libraries the API calls that print INFO/WARNING lines of their own (absl's handler
#: writes straight to stderr); quieted to ERROR during an API call unless the user set their level.
_CHATTY_LOGGERS = ("absl", "tensorflow", "tf2onnx", "h5py", "jax._src.xla_bridge", "onnxruntime")


def cli_owns_output() -> None:
    """The CLI prints progress and filters native noise for the whole process: :func:`quiet_library` then does
    nothing (the CLI frame calls this)."""
    _owner["cli"] = True


def _warning_to_log(message: Any, category: type, filename: str, lineno: int, file: Any = None,
                    line: str | None = None) -> None:
    logging.getLogger("py.warnings").debug("%s:%s: %s: %s", filename, lineno, category.__name__, message)


class quiet_library:  # noqa: N801  (used as a decorator and a context manager, like contextlib's)
    """What the Python API prints: nothing, unless asked (issue 25).

    Inside, edgecnn's progress lines become INFO records of the ``edgecnn`` logger (shown by
    ``logging.basicConfig(level=logging.INFO)``), third-party native lines (absl, oneDNN, cuInit, the TFLite
    converter, LiteRT's XNNPACK line) are filtered from file descriptor 2 as the CLI does, Python warnings of the
    libraries go to the ``py.warnings`` logger at DEBUG, and chatty library loggers whose level the user left
    unset are held at ERROR. ``verbose=True`` (a keyword of every API call) leaves everything as is; edgecnn's own
    warnings and errors are never hidden. Under the CLI (:func:`cli_owns_output`) it does nothing.
    """

    def __init__(self, verbose: bool = False) -> None:
        self.verbose = verbose
        self._saved: list[Any] = []

    def __call__(self, fn: Any) -> Any:
        import functools

        @functools.wraps(fn)
        def wrapper(*args: Any, verbose: bool = False, **kwargs: Any) -> Any:
            with quiet_library(verbose):
                return fn(*args, **kwargs)

        return wrapper

    def __enter__(self) -> quiet_library:
        if self.verbose or _owner["cli"]:
            self._saved.append(None)
            return self
        import warnings

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        catcher = warnings.catch_warnings()
        catcher.__enter__()
        warnings.showwarning = _warning_to_log
        levels = {}
        for name in _CHATTY_LOGGERS:
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                levels[name] = logger.level
                logger.setLevel(logging.ERROR)
        self._saved.append((_quiet, quiet_native_stderr(), catcher, levels))
        set_quiet(True)
        return self

    def __exit__(self, *exc: Any) -> None:
        saved = self._saved.pop()
        if saved is None:
            return
        was_quiet, filtering, catcher, levels = saved
        set_quiet(was_quiet)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        catcher.__exit__(*exc)
        if filtering:
            restore_native_stderr()
