"""Which (format, precision) pairs an export writes, from ``--format``/``--quantize``, checked against the registry."""

from __future__ import annotations

from edgecnn.errors import ConfigError


def plan_targets(formats: list[str], quantize: list[str], io_dtype: str | None = None) -> list[tuple[str, str]]:
    """(format, precision) pairs to write, from ``--format``/``--quantize`` values, validated against the registry.

    ``all`` expands to every format / every precision that fits. A pair named explicitly that does not fit
    (``--format saved_model --quantize int8``) is an error; pairs produced by ``all`` that do not fit are skipped.

    Raises:
        ConfigError: unknown value, an explicit combination the registry does not allow, or ``io_dtype``
            without int8.
    """
    from converters.registry import FORMATS, IO_DTYPE_TARGET, IO_DTYPES, PRECISIONS, precision_name

    formats = [f.lower() for f in (formats or ["tflite"])]
    quantize = [q.lower() for q in (quantize or ["none"])]
    for f in formats:
        if f != "all" and f not in FORMATS:
            raise ConfigError(f"Unknown format {f!r}; expected all or one of {list(FORMATS)}.")
    precisions: list[str] = []
    for q in quantize:
        if q == "all":
            precisions += list(PRECISIONS)
            continue
        try:
            precisions.append(precision_name(q))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    precisions = list(dict.fromkeys(precisions))
    fmts = list(dict.fromkeys(FORMATS if "all" in formats else formats))
    explicit_f, explicit_q = "all" not in formats, "all" not in quantize
    pairs: list[tuple[str, str]] = []
    for f in fmts:
        for p in precisions:
            if p in FORMATS[f].precisions:
                pairs.append((f, p))
            elif explicit_f and explicit_q:
                raise ConfigError(
                    f"--format {f} cannot be written with --quantize {PRECISIONS[p].alias}; "
                    f"{f} supports {[PRECISIONS[x].alias for x in FORMATS[f].precisions]}."
                )
    if not pairs:
        raise ConfigError(f"Nothing to export: no precision in {quantize} fits formats {fmts}.")
    if io_dtype is not None:
        if io_dtype not in IO_DTYPES:
            raise ConfigError(f"--io-dtype must be one of {list(IO_DTYPES)}; received {io_dtype!r}.")
        if IO_DTYPE_TARGET not in pairs:
            raise ConfigError("--io-dtype applies to full-int8 TFLite only; add --quantize int8 --format tflite or drop --io-dtype.")
    return pairs
