"""``edgecnn station releases|status|rollback --prefix P``: the releases a bundle installed on this box.

Registered on the ``station`` command group by :func:`register_releases` (the group itself lives in
``edgecnn/cli/station.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

PrefixOpt = Annotated[Path, typer.Option("--prefix", help="Where the bundle was installed (sh install --prefix).")]


def releases_cmd(
    prefix: PrefixOpt = Path("/opt/edgecnn"),
    prune: Annotated[bool, typer.Option("--prune", help="Remove releases beyond --keep (never current or the one "
                                        "before it).")] = False,
    keep: Annotated[int, typer.Option("--keep", min=2, help="Releases kept by --prune.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the installed releases with their on-box self-check results (and prune old ones)."""
    import json

    from edgecnn.console import console
    from edgecnn.deploy.releases import check_prefix, describe_status, list_releases
    from edgecnn.deploy.releases import prune as prune_releases

    removed = prune_releases(prefix, keep) if prune else []
    rels = list_releases(check_prefix(prefix))
    if as_json:
        console.print_json(json.dumps({"releases": [r.to_dict() for r in rels], "pruned": removed}, default=str))
        return
    for r in rels:
        mark = "*" if r.current else "<" if r.previous else " "
        console.print(f"{mark} {r.id:<40} {describe_status(r.status)}", markup=False)
    if removed:
        console.print(f"Pruned {len(removed)}: {', '.join(removed)}", markup=False)
    console.print("(* current, < previous: what rollback switches to)", markup=False)


def status_cmd(prefix: PrefixOpt = Path("/opt/edgecnn"),
               as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """What runs here: the current release, its self-check figures, the one rollback returns to, the service."""
    import json

    from edgecnn.console import console
    from edgecnn.deploy.releases import describe_status, status

    st = status(prefix)
    if as_json:
        console.print_json(json.dumps(st, default=str))
        return
    for key in ("current", "previous"):
        rel = st[key]
        console.print(f"{key:<9} {rel['id'] if rel else '-'}  {describe_status(rel['status']) if rel else ''}", markup=False)
    svc = st.get("service")
    console.print(f"service   {svc['unit'] + ' (' + svc['path'] + ')' if svc else 'not installed (--no-service)'}",
                  markup=False)


def rollback_cmd(prefix: PrefixOpt = Path("/opt/edgecnn"),
                 to: Annotated[str | None, typer.Option("--to", help="Release id to switch to (default: the previous "
                                                        "one).")] = None) -> None:
    """Switch current back to the previous release, atomically, and restart the service if one was installed."""
    from edgecnn.console import console
    from edgecnn.deploy.releases import rollback

    res = rollback(prefix, to=to)
    svc = f"; service {res['service']['unit']} restarted" if res["service"] else ""
    console.print(f"Rolled back {prefix}/current: {res['from']} -> {res['to']} in {res['seconds']:.2f} s{svc}",
                  markup=False)


def register_releases(group: typer.Typer) -> None:
    """Add ``releases``, ``status`` and ``rollback`` to the ``station`` group."""
    from edgecnn.cli import EdgeCommand

    group.command("releases", cls=EdgeCommand)(releases_cmd)
    group.command("status", cls=EdgeCommand)(status_cmd)
    group.command("rollback", cls=EdgeCommand)(rollback_cmd)
