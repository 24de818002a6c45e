"""``edgecnn review CAPTURES --data DATASET``: label captures in a local web page, moving each into
``DATASET/<class>/``.

The page (127.0.0.1 only) shows the captures as a grid, the most uncertain first (lowest top-1 score, then
smallest margin), each with the model's guess. Keys: ``1``-``9`` label the highlighted capture with that class,
``x`` discards it (to ``CAPTURES/discarded/``), ``u`` undoes the last action.

Every capture is in exactly one place at every moment a process can die:

* a move is ``link(src, dst)`` then ``unlink(src)`` (a link never overwrites; a taken name gets a ``-1``,
  ``-2``... suffix, chosen before the move and logged); across filesystems, a copy to a temporary name, fsync,
  link, unlink;
* the append-only log ``CAPTURES/review.jsonl`` gets a ``pending`` line before the move and a ``done`` line after;
  on start, a ``pending`` without its ``done`` is finished from what is on disk (both names exist: the source
  goes; only the destination: done; only the source: ``aborted``). Undo reads the log (the newest action not yet
  undone) and moves the file back the same way; :meth:`ReviewStore.audit` reads it to list where every capture is.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.errors import ConfigError, DataError
from edgecnn.fileio import fault_point
from edgecnn.monitor.capture import CAPTURES_FILE

LOG_FILE = "review.jsonl"
DISCARDED_DIR = "discarded"


@dataclass
class Item:
    """One capture awaiting review."""

    id: str
    path: Path
    label: str
    score: float
    margin: float | None
    why: list[str]
    source: str
    region: str
    topk: list[Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "score": self.score, "margin": self.margin, "why": self.why,
                "source": self.source, "region": self.region, "topk": self.topk, "name": self.path.name}


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or the first ``stem-N.suffix`` not taken."""
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(100_000):
        dst = folder / (name if n == 0 else f"{stem}-{n}{suffix}")
        if not os.path.lexists(dst):
            return dst
    raise DataError(f"No free name for {name} in {folder}.")


def move_no_overwrite(src: Path, dst: Path) -> Path:
    """Move ``src`` to ``dst`` atomically, never overwriting (``FileExistsError`` when ``dst`` exists).

    ``link(src, dst)`` then ``unlink(src)``; across filesystems a copy to a temporary name (fsynced) is linked
    instead. Dying between the two steps leaves the file under both names; recovery removes ``src``.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (18, 1, 95):  # EXDEV, EPERM, EOPNOTSUPP: no hard link here; copy instead
            raise
        tmp = dst.parent / f".{dst.name}.edgecnn-tmp-{os.getpid()}"
        shutil.copy2(src, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        try:
            os.link(tmp, dst)
        finally:
            tmp.unlink()
    _fsync_dir(dst.parent)
    fault_point("review:linked")
    src.unlink()
    _fsync_dir(src.parent)
    return dst


class ReviewStore:
    """The captures, the dataset and the log (thread-safe; every method is one whole action).

    Args:
        captures: The capture folder (``captures.jsonl``, ``crops/``).
        dataset: The dataset folder (one sub-folder per class).
        classes: The classes keys 1-9 map to (default: the dataset's class folders and the labels the model
            named in the captures, sorted).
    """

    def __init__(self, captures: str | os.PathLike[str], dataset: str | os.PathLike[str],
                 classes: list[str] | None = None) -> None:
        self.captures = Path(captures)
        self.dataset = Path(dataset)
        index = self.captures / CAPTURES_FILE
        if not index.is_file():
            raise DataError(f"Expected a capture folder with {CAPTURES_FILE}; received {self.captures} (make one with "
                            "`edgecnn run ... --capture` or a station's [capture] section).")
        if self.dataset.resolve() == self.captures.resolve() or self.captures.resolve() in self.dataset.resolve().parents:
            raise ConfigError(f"Expected --data outside the capture folder; received {self.dataset}.")
        self.log_path = self.captures / LOG_FILE
        self._lock = threading.Lock()
        self._records = self._read_index(index)
        self._log: list[dict[str, Any]] = self._read_log()
        self.recovered = self._recover()
        self.classes = classes or self._classes()
        for c in self.classes:
            if not c or Path(c).name != c or c in (".", ".."):
                raise ConfigError(f"Expected class names that are plain folder names; received {c!r}.")

    # ------------------------------------------------------------------ reading
    def _read_index(self, index: Path) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        with open(index, encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a kill: the capture's files were written before it, nothing is lost
                if isinstance(rec, dict) and "id" in rec and "crop" in rec:
                    out[str(rec["id"])] = rec
        return out

    def _read_log(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        with open(self.log_path, "rb+") as fh:  # a line torn by a kill is ended, so the next one stays whole
            fh.seek(0, os.SEEK_END)
            if fh.tell():
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")
        out = []
        with open(self.log_path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a torn last line: its action is recovered from the disk below
        return out

    def _classes(self) -> list[str]:
        names = {p.name for p in self.dataset.iterdir() if p.is_dir() and not p.name.startswith(".")} \
            if self.dataset.is_dir() else set()
        for rec in self._records.values():
            names.update(str(t[0]) for t in rec.get("topk") or [] if t and t[0])
        names.discard("")
        if not names:
            raise ConfigError("Expected classes: give --classes a,b,c or class folders in --data.")
        return sorted(names)

    def _append(self, rec: dict[str, Any]) -> dict[str, Any]:
        rec = {"time": round(time.time(), 3), **rec}
        line = json.dumps(rec, ensure_ascii=False) + "\n"
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        self._log.append(rec)
        return rec

    def _finished(self) -> dict[int, dict[str, Any]]:
        """seq -> the pending record of each action whose done line exists."""
        pending = {r["seq"]: r for r in self._log if r.get("state") == "pending"}
        return {s: pending[s] for s in (r["seq"] for r in self._log if r.get("state") == "done") if s in pending}

    def _recover(self) -> int:
        """Finish actions a kill interrupted; returns how many."""
        states: dict[int, str] = {}
        pending: dict[int, dict[str, Any]] = {}
        for r in self._log:
            if r.get("state") == "pending":
                pending[r["seq"]] = r
            states[r.get("seq", -1)] = r.get("state", "")
        n = 0
        for seq, rec in pending.items():
            if states.get(seq) != "pending":
                continue
            src, dst = Path(rec["src"]), Path(rec["dst"])
            if dst.exists():
                if src.exists():
                    src.unlink()
                self._append({"seq": seq, "state": "done", "dst": str(dst), "recovered": True})
            else:
                self._append({"seq": seq, "state": "aborted", "recovered": True})
            n += 1
        return n

    def _next_seq(self) -> int:
        return max((int(r.get("seq", 0)) for r in self._log), default=0) + 1

    def _reviewed(self) -> dict[str, dict[str, Any]]:
        """capture id -> its newest done action that is not undone (label or discard)."""
        done = self._finished()
        undone = {r["undoes"] for s, r in done.items() if r.get("op") == "undo"}
        out: dict[str, dict[str, Any]] = {}
        for seq in sorted(done):
            r = done[seq]
            if r.get("op") in ("label", "discard"):
                if seq in undone:
                    out.pop(r["id"], None)
                else:
                    out[r["id"]] = {**r, "dst": self._done_dst(seq) or r.get("dst")}
        return out

    def _done_dst(self, seq: int) -> str | None:
        for r in self._log:
            if r.get("seq") == seq and r.get("state") == "done" and r.get("dst"):
                return str(r["dst"])
        return None

    def items(self) -> list[Item]:
        """The captures still to review, most uncertain first (their crop still on disk)."""
        with self._lock:
            reviewed = self._reviewed()
            out = []
            for cid, rec in self._records.items():
                path = self.captures / rec["crop"]
                if cid in reviewed or not path.is_file():
                    continue
                out.append(Item(cid, path, str(rec.get("label", "")), float(rec.get("score") or 0.0),
                                rec.get("margin"), list(rec.get("why") or []), str(rec.get("source", "")),
                                str(rec.get("region", "")), list(rec.get("topk") or [])))
            out.sort(key=lambda i: (i.score, i.margin if i.margin is not None else 1.0, i.id))
            return out

    # ------------------------------------------------------------------ actions
    def _move(self, op: str, cid: str, folder: Path, extra: dict[str, Any]) -> dict[str, Any]:
        rec = self._records.get(cid)
        if rec is None:
            raise DataError(f"No capture {cid!r} in {self.captures}.")
        if cid in self._reviewed():
            raise DataError(f"Capture {cid!r} is already reviewed; press u to undo it first.")
        src = self.captures / rec["crop"]
        if not src.is_file():
            raise DataError(f"Capture {cid!r} has no file any more ({src.name}: removed to stay under max_gb).")
        seq = self._next_seq()
        dst = free_name(folder, src.name)
        self._append({"seq": seq, "state": "pending", "op": op, "id": cid, "src": str(src), "dst": str(dst),
                      **extra})
        fault_point("review:logged")
        move_no_overwrite(src, dst)
        self._append({"seq": seq, "state": "done", "dst": str(dst)})
        return {"seq": seq, "op": op, "id": cid, "dst": str(dst), **extra}

    def label(self, cid: str, cls: str) -> dict[str, Any]:
        """Move capture ``cid`` into ``DATASET/cls/``."""
        if cls not in self.classes:
            raise DataError(f"Expected a class in {self.classes}; received {cls!r}.")
        with self._lock:
            return self._move("label", cid, self.dataset / cls, {"class": cls})

    def discard(self, cid: str) -> dict[str, Any]:
        """Move capture ``cid`` to ``CAPTURES/discarded/``."""
        with self._lock:
            return self._move("discard", cid, self.captures / DISCARDED_DIR, {})

    def undo(self) -> dict[str, Any] | None:
        """Move the newest reviewed capture back; None when there is nothing to undo."""
        with self._lock:
            reviewed = self._reviewed()
            if not reviewed:
                return None
            last = max(reviewed.values(), key=lambda r: r["seq"])
            dst, src = Path(last["dst"]), Path(last["src"])
            seq = self._next_seq()
            back = free_name(src.parent, src.name)
            self._append({"seq": seq, "state": "pending", "op": "undo", "undoes": last["seq"], "id": last["id"],
                          "src": str(dst), "dst": str(back)})
            move_no_overwrite(dst, back)
            self._append({"seq": seq, "state": "done", "dst": str(back)})
            return {"seq": seq, "op": "undo", "undoes": last["seq"], "id": last["id"], "dst": str(back)}

    # ------------------------------------------------------------------ audit
    def audit(self) -> dict[str, Any]:
        """Where every capture is, from the disk, checked against the log: ``places`` (id -> the existing files among
        its capture path and every name the log gave it), ``labelled``/``discarded``/``pending`` counts,
        ``missing`` (no file: removed under max_gb), ``duplicated`` (more than one) and ``log_mismatch`` (a reviewed
        capture not exactly where its last action put it)."""
        with self._lock:
            reviewed = self._reviewed()
            named: dict[str, list[str]] = {}  # every name the log ever gave each capture
            for r in self._log:
                if r.get("state") == "pending" and r.get("dst"):
                    named.setdefault(r["id"], []).append(r["dst"])
            places: dict[str, list[str]] = {}
            for cid, rec in self._records.items():
                names = [str(self.captures / rec["crop"]), *named.get(cid, [])]
                places[cid] = [n for n in dict.fromkeys(names) if os.path.exists(n)]
            logged_at = {cid: r["dst"] for cid, r in reviewed.items()}
            return {
                "places": places,
                "labelled": sum(1 for r in reviewed.values() if r["op"] == "label"),
                "discarded": sum(1 for r in reviewed.values() if r["op"] == "discard"),
                "pending": len(self._records) - len(reviewed),
                "missing": sorted(c for c, p in places.items() if not p),
                "duplicated": sorted(c for c, p in places.items() if len(p) > 1),
                "log_mismatch": sorted(c for c, d in logged_at.items() if places.get(c) != [d]),
                "actions": len(self._finished()),
            }


# ---------------------------------------------------------------------------- the page
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>edgecnn review</title>
<style>
body{font:14px system-ui,sans-serif;background:#111;color:#eee;margin:0}
header{position:sticky;top:0;background:#1c1c1c;padding:.6em 1em;border-bottom:1px solid #333}
header b{color:#9cf} .keys span{display:inline-block;margin-right:1em} kbd{background:#333;border-radius:3px;padding:0 .35em}
#status{float:right;color:#aaa}
#grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px;padding:1em}
.card{background:#1c1c1c;border:2px solid #333;border-radius:6px;padding:6px;text-align:center}
.card.current{border-color:#fc3;box-shadow:0 0 8px #fc3}
.card img{width:128px;height:128px;object-fit:contain;image-rendering:pixelated;background:#000}
.guess{font-weight:600}.why{color:#999;font-size:12px}.score{color:#f96}
#empty{padding:2em;color:#9c9}
</style></head><body>
<header><span id="status"></span><b>edgecnn review</b> &nbsp; <span class="keys" id="keys"></span>
<kbd>x</kbd> discard &nbsp; <kbd>u</kbd> undo</header>
<div id="grid"></div><div id="empty" hidden>Nothing left to review.</div>
<script>
let classes=[], items=[], chain=Promise.resolve(), done=0;
const grid=document.getElementById('grid');
function esc(s){return String(s).replace(/[&<>"']/g,c=>'&#'+c.charCodeAt(0)+';')}
function render(){
  grid.innerHTML=items.map((it,i)=>`<div class="card${i===0?' current':''}" data-id="${esc(it.id)}">
    <img src="img/${encodeURIComponent(it.id)}" alt="${esc(it.name)}"><div class="guess">${esc(it.label)}
    <span class="score">${(it.score*100).toFixed(0)}%</span></div><div class="why">${esc(it.why.join(', '))}
    · ${esc(it.source)}/${esc(it.region)}</div></div>`).join('');
  document.getElementById('empty').hidden=items.length>0;
  document.getElementById('status').textContent=`${items.length} to review · ${done} done`;
}
async function load(){
  const r=await fetch('api/items'); const j=await r.json(); classes=j.classes; items=j.items; done=j.done;
  document.getElementById('keys').innerHTML=classes.slice(0,9).map((c,i)=>`<span><kbd>${i+1}</kbd> ${esc(c)}</span>`).join('');
  render();
}
async function post(path,body){
  const r=await fetch(path,{method:'POST',headers:{'Content-Type':'application/json'},body:JSON.stringify(body||{})});
  const j=await r.json(); if(!r.ok){document.getElementById('status').textContent=j.message||'error'; throw j}
  return j;
}
function act(key){
  chain=chain.then(async()=>{
    if(key==='u'){await post('api/undo'); await load(); return}
    const it=items[0]; if(!it) return;
    if(key==='x'){await post('api/discard',{id:it.id})}
    else {const c=classes[Number(key)-1]; if(c===undefined) return; await post('api/label',{id:it.id,'class':c})}
    items.shift(); done++; render();
  }).catch(()=>load());
}
document.addEventListener('keydown',e=>{
  if(e.ctrlKey||e.metaKey||e.altKey) return;
  const k=e.key.toLowerCase(); if(/^[1-9]$/.test(k)||k==='x'||k==='u'){e.preventDefault(); act(k)}
});
load();
</script></body></html>"""


def create_app(store: ReviewStore) -> Any:
    """The Starlette app of the review page."""
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse
    from starlette.routing import Route

    from edgecnn.serve.http import HTTPError, error_handlers, read_body

    async def page(request: Any) -> Any:
        return HTMLResponse(PAGE)

    def items(request: Any) -> Any:
        pending = store.items()
        audit_done = len(store._reviewed())
        return JSONResponse({"classes": store.classes, "items": [i.to_json() for i in pending], "done": audit_done})

    def image(request: Any) -> Any:
        rec = store._records.get(request.path_params["cid"])
        path = store.captures / rec["crop"] if rec else None
        if path is None or not path.is_file():
            raise HTTPError(404, "not_found", "No such capture (already reviewed, or removed to stay under max_gb).")
        return FileResponse(path, headers={"Cache-Control": "no-store"})

    def same_origin(request: Any) -> None:
        """Only this page may act: a loopback Host (no DNS rebinding), a JSON body (a cross-site form or
        ``text/plain`` fetch cannot send one without a preflight, which this app refuses) and, when the browser
        names one, this Origin."""
        host = request.headers.get("host", "")
        if host.rsplit(":", 1)[0] not in ("127.0.0.1", "localhost", "[::1]"):
            raise HTTPError(403, "forbidden", f"Expected the review page on 127.0.0.1; received Host {host!r}.")
        origin = request.headers.get("origin")
        if origin is not None and origin != f"http://{host}":
            raise HTTPError(403, "forbidden", f"Expected requests from this page (http://{host}); received Origin "
                                              f"{origin!r}.")
        if request.method == "POST" and not request.headers.get("content-type", "").startswith("application/json"):
            raise HTTPError(415, "unsupported_media_type", "Expected Content-Type: application/json.")

    async def body(request: Any) -> dict[str, Any]:
        same_origin(request)
        raw = await read_body(request, 65536)
        try:
            data = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            raise HTTPError(400, "bad_request", "Expected a JSON body.") from None
        if not isinstance(data, dict):
            raise HTTPError(400, "bad_request", "Expected a JSON object.")
        return data

    def _run(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except DataError as exc:
            raise HTTPError(409, "conflict", str(exc)) from None

    async def label(request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool

        data = await body(request)
        return JSONResponse(await run_in_threadpool(_run, store.label, str(data.get("id", "")),
                                                    str(data.get("class", ""))))

    async def discard(request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool

        data = await body(request)
        return JSONResponse(await run_in_threadpool(_run, store.discard, str(data.get("id", ""))))

    async def undo(request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool

        await body(request)
        return JSONResponse(await run_in_threadpool(store.undo) or {"op": None})

    def audit(request: Any) -> Any:
        return JSONResponse(store.audit())

    routes = [Route("/", page), Route("/api/items", items), Route("/img/{cid:str}", image),
              Route("/api/label", label, methods=["POST"]), Route("/api/discard", discard, methods=["POST"]),
              Route("/api/undo", undo, methods=["POST"]), Route("/api/audit", audit)]
    return Starlette(routes=routes, exception_handlers=error_handlers())


def review(captures: str | os.PathLike[str], dataset: str | os.PathLike[str], classes: list[str] | None = None,
           port: int = 0, started: Any = None) -> ReviewStore:
    """Serve the review page on 127.0.0.1 until Ctrl-C; ``started(url, store)`` is called once it listens."""
    from edgecnn.serve.http import Server, require_stack

    require_stack("for the review page")
    store = ReviewStore(captures, dataset, classes)
    server = Server(create_app(store), host="127.0.0.1", port=port)
    server.start()
    try:
        if started is not None:
            started(server.url, store)
        while server._thread is not None and server._thread.is_alive():
            server._thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return store


__all__ = ["Item", "ReviewStore", "create_app", "free_name", "move_no_overwrite", "review"]
