"""The ``edgecnn`` command line as a Typer application: every command, its options and ``--help``.

Each command lives in its own module exposing ``register(app)``; commands are built with
:class:`EdgeCommand` so a user error (:class:`~edgecnn.errors.EdgeCNNError`) prints one red line and exits
non-zero (no traceback unless ``--verbose``), as :func:`edgecnn.cli.frame.exit_code` words it.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from edgecnn import __version__
from edgecnn.cli.frame import HANDLED, configure, exit_code

COMMAND_MODULES = ("train", "export", "parity", "info", "run", "evaluate", "devices", "station", "bench", "serve", "bundle",
                   "demo", "clean", "capture", "review")


def _handle(exc: BaseException) -> None:
    raise typer.Exit(exit_code(exc))


#: Commands other tools (Ultralytics, MediaPipe, timm, ONNX tools) have taught their users, and edgecnn's name for each.
COMMAND_HABITS = {"predict": "run", "infer": "run", "inference": "run", "classify": "run", "detect": "run",
                  "val": "evaluate", "validate": "evaluate", "eval": "evaluate", "test": "evaluate",
                  "benchmark": "bench", "fit": "train", "convert": "export", "quantize": "export",
                  "check": "parity", "inspect": "info", "show": "info"}

#: Options other tools use, and edgecnn's spelling (suggested only where the command has it).
OPTION_HABITS = {"--conf": "--threshold", "--confidence": "--threshold", "--score-threshold": "--threshold",
                 "--topk": "--top-k", "--top": "--top-k", "--imgsz": "--img-size", "--img": "--img-size",
                 "--image-size": "--img-size", "--weights": "--model", "--input": "--source", "--images": "--source",
                 "--save-txt": "--save-csv", "--save-json": "--save-jsonl", "--bs": "--batch",
                 "--batch-size": "--batch", "--num-threads": "--threads", "--workers-per-gpu": "--workers",
                 "--format-onnx": "--format", "--int8": "--quantize", "--half": "--quantize"}


def _click() -> Any:
    """The Click that Typer runs on: Typer 0.2x vendors its own copy (``typer._click``), whose exceptions differ."""
    try:
        from typer._click import exceptions
    except ImportError:  # an older Typer on the system Click
        from click import exceptions
    return exceptions


def _option_names(command: Any) -> list[str]:
    return [o for p in getattr(command, "params", []) for o in (*p.opts, *p.secondary_opts) if o.startswith("-")]


def _habit_hint(command: Any, ctx: Any, exc: Exception) -> None:
    """Add edgecnn's spelling to Click's "No such option" / "unexpected extra argument" errors."""
    click = _click()
    names = _option_names(command)
    if isinstance(exc, click.NoSuchOption):
        wanted = OPTION_HABITS.get(exc.option_name)
        if wanted in names:
            exc.message = f"No such option: {exc.option_name}. Did you mean {wanted}?"
            exc.possibilities = None
    elif isinstance(exc, click.UsageError) and "unexpected extra argument" in exc.message:
        option = next((o for o in ("--source", "--data") if o in names), None)
        if option:
            extra = exc.message.rsplit("(", 1)[-1].rstrip(")")
            what = "A source" if option == "--source" else "A labelled folder"
            exc.message += f". {what} is given with {option}: edgecnn {command.name} MODEL {option} {extra}"


class _EdgeFrame:
    """What every command and group shares: user errors become one red line and a non-zero exit, ``--help``
    is coerced without Pydantic, and habits from other tools get edgecnn's spelling suggested."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc]
        except _click().UsageError as exc:
            _habit_hint(self, ctx, exc)
            raise

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except HANDLED as exc:
            _handle(exc)

    def get_help_option(self, ctx: typer.Context) -> Any:
        from edgecnn.cli.coercion import install_param, tidy_help

        option = install_param(super().get_help_option(ctx))  # type: ignore[misc]  (built per call)
        if option is not None:
            tidy_help(option)
        return option


class EdgeCommand(_EdgeFrame, TyperCommand):
    """A Typer command whose user errors become one red line and a non-zero exit."""


class EdgeGroup(_EdgeFrame, TyperGroup):
    """A Typer group (``devices``, ``bench``) with the same error handling as :class:`EdgeCommand`."""


def new_typer(**kwargs: Any) -> typer.Typer:
    """A sub-application (command group) configured like the root one."""
    kwargs.setdefault("cls", EdgeGroup)
    kwargs.setdefault("no_args_is_help", True)
    kwargs.setdefault("pretty_exceptions_enable", False)
    return typer.Typer(**kwargs)


def _load_command(name: str) -> Any:
    """Import one command's module and build its Click command (or group)."""
    try:
        module = importlib.import_module(f"edgecnn.cli.{name}")
    except ModuleNotFoundError as exc:  # a command not written yet in this checkout
        if exc.name == f"edgecnn.cli.{name}":
            return None
        raise
    holder = typer.Typer(rich_markup_mode=app.rich_markup_mode)
    module.register(holder)
    command = typer.main.get_group(holder).commands.get(name)
    if command is not None:
        from edgecnn.cli.coercion import install

        install(command)  # plain option values without importing Pydantic (cold start)
    return command


class LazyRootGroup(EdgeGroup):
    """The root group: a command's module is imported only when that command is looked up.

    ``edgecnn run ...`` therefore never imports the training, export or bench modules (nor what they
    import, such as OpenCV or the architecture registry); ``edgecnn --help`` still lists every command.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        from edgecnn.cli.coercion import install

        install(self)  # the root's own options, coerced without Pydantic
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except _click().UsageError as exc:  # the lazy group knows few commands yet: suggest from every name
            import difflib

            name = str(args[0]) if args else ""
            names = self.list_commands(ctx)
            if not exc.message.startswith("No such command") or name in names:
                raise
            habit = COMMAND_HABITS.get(name)
            close = [habit] if habit in names else difflib.get_close_matches(name, names, n=1)
            if close:
                exc.message = f"No such command {name!r}. Did you mean {close[0]!r}?"
                if close[0] == "run":
                    exc.message += " edgecnn run MODEL --source IMAGES|VIDEO|URL (or --camera 0)"
            raise

    def list_commands(self, ctx: Any) -> list[str]:
        return [n for n in COMMAND_MODULES if n in self.commands or importlib.util.find_spec(f"edgecnn.cli.{n}")]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in COMMAND_MODULES:
            command = _load_command(cmd_name)
            if command is not None:
                self.add_command(command, cmd_name)
        return command


app = typer.Typer(
    name="edgecnn",
    cls=LazyRootGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Train, export, verify and run small image-classification CNNs on edge devices.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgecnn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks and debug logs.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """edgecnn: train → export → run → bench, proving at every step that nothing was lost."""
    configure(verbose)


__all__ = ["COMMAND_MODULES", "EdgeCommand", "EdgeGroup", "LazyRootGroup", "app", "new_typer"]
