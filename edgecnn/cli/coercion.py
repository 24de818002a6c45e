"""Typer's parameter coercion without importing Pydantic for the values it would accept unchanged.

Typer (0.2x) coerces every parameter through a Pydantic ``TypeAdapter``; importing Pydantic and building one
adapter per option costs more than loading a model and classifying an image (issue 12: ``edgecnn run`` cold
start as a whole process). :func:`install` gives each parameter of a command a coercer that converts the
plain, valid values itself (a digit string for an ``int``, a member of an ``Enum``, a path without checks to
make ...) exactly as Typer would, and hands anything else (a bad value, a constrained path, a custom parser)
to Typer's own adapter, so errors and edge cases keep Typer's behaviour and messages. A test checks the
two give the same values for every parameter of every command.

If Typer's internals change shape, :func:`install` does nothing and Typer coerces as usual.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

#: The number spellings both Typer and the fast paths read the same way (others go to Typer, which words errors).
INT_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)")
FLOAT_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


class _Fallback(Exception):
    """This value needs Typer's own coercion."""


def _leaf(annotation: Any, info: Any, value: Any, ctx: Any, param: Any) -> Any:
    if getattr(info, "parser", None) is not None or getattr(info, "click_type", None) is not None:
        raise _Fallback
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise _Fallback
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _Fallback
    if annotation is int:
        if type(value) is int:
            result = value
        elif isinstance(value, str) and INT_TEXT.fullmatch(value):
            result = int(value)
        else:
            raise _Fallback
        return _in_range(result, info)
    if annotation is float:
        if type(value) in (int, float):
            result = float(value)
        elif isinstance(value, str) and FLOAT_TEXT.fullmatch(value):
            result = float(value)
        else:
            raise _Fallback
        return _in_range(result, info)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        from typer._param_types import coerce_cli_choice

        try:
            return coerce_cli_choice(value, choices=list(annotation), case_sensitive=info.case_sensitive, ctx=ctx)
        except ValueError:
            raise _Fallback from None
    if annotation is Path and getattr(info, "path_type", None) in (None, Path) and isinstance(value, (str, Path)):
        from typer._param_types import coerce_cli_path

        return coerce_cli_path(Path(value), info, path_type=Path, param=param, ctx=ctx)
    raise _Fallback


def _in_range(value: int | float, info: Any) -> int | float:
    if getattr(info, "clamp", False):
        raise _Fallback
    low, high = getattr(info, "min", None), getattr(info, "max", None)
    if (low is not None and value < low) or (high is not None and value > high):
        raise _Fallback  # Typer words the error
    return value


@dataclass
class FastCoercion:
    """A parameter's coercer: plain values here, the rest through Typer's ``build_runtime_param``."""

    descriptor: Any
    _typer: Any = field(default=None, repr=False)

    @property
    def typer(self) -> Any:
        if self._typer is None:
            from typer._coercion import build_runtime_param

            self._typer = build_runtime_param(self.descriptor)
        return self._typer

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        multi = param.multiple or param.nargs == -1
        if value is None:
            return () if multi else None
        try:
            return self._fast(value, param, ctx, multi)
        except _Fallback:
            return self.typer.coerce(value, param=param, ctx=ctx)

    def _fast(self, value: Any, param: Any, ctx: Any, multi: bool) -> Any:
        d = self.descriptor
        if d.file_annotation is not None:
            raise _Fallback
        annotation = d.annotation
        if get_origin(annotation) is list:
            (item_type,) = get_args(annotation)
            if not isinstance(value, (list, tuple)) or not multi:
                raise _Fallback
            return [_leaf(item_type, d.parameter_info, v, ctx, param) for v in value]
        if multi:
            raise _Fallback
        return _leaf(annotation, d.parameter_info, value, ctx, param)


def install_param(param: Any) -> Any:
    """Give one Typer parameter the fast coercer (unless Typer already built its own); returns ``param``."""
    if (param is not None and getattr(param, "_runtime_param", "") is None
            and hasattr(param, "type_descriptor") and hasattr(param, "get_runtime_param")):
        param._runtime_param = FastCoercion(param.type_descriptor)
    return param


def _text(help_text: str | None) -> str | None:
    """Help as text, never markup: ``pip install 'edgecnn[ray]'`` keeps its ``[ray]``."""
    if not help_text or "[" not in help_text:
        return help_text
    from rich.markup import escape

    return escape(help_text)


def tidy_help(param: Any) -> None:
    """One help style for every command (issue 25): positionals as ``MODEL`` (``[MODEL]`` when optional,
    ``MODELS...`` when repeated), as Click writes them, no ``<bool>`` type beside a flag, and help that is text
    (brackets kept, never read as markup)."""
    if getattr(param, "help", None):
        param.help = _text(param.help)
    if getattr(param, "param_type_name", "") == "argument" and param.name:
        name = param.name.upper() + ("..." if param.nargs != 1 else "")
        param.metavar = name
        usage = name if param.required else f"[{name}]"
        param._usage_display_name = lambda: usage  # Typer 0.2x writes {model}: Click's MODEL / [MODEL] instead
    elif getattr(param, "is_flag", False) and hasattr(param, "display_type_rich"):
        param.display_type_rich = lambda ctx=None: None  # the flag itself says it takes no value


def install(command: Any) -> None:
    """Give every parameter of ``command`` (and of its sub-commands) the fast coercer, where Typer allows it, and
    the one help style (:func:`tidy_help`)."""
    if getattr(command, "help", None) and not getattr(command, "_edgecnn_tidy", False):
        command.help = _text(command.help)
        command._edgecnn_tidy = True
    for param in getattr(command, "params", ()):
        if getattr(param, "_edgecnn_tidy", False):
            continue
        param._edgecnn_tidy = True
        install_param(param)
        tidy_help(param)
    for sub in getattr(command, "commands", {}).values():
        install(sub)


__all__ = ["FLOAT_TEXT", "INT_TEXT", "FastCoercion", "install", "install_param"]
