"""A minimal Hugging Face Hub-compatible HTTP server for tests (standard library only).

Serves what the real huggingface_hub client (1.x) calls for `create_repo`, `upload_file` / `upload_folder` /
`push_to_hub` (every file "regular": base64 contents inside the NDJSON commit, never LFS or Xet), `model_info`,
`list_repo_tree` and `hf_hub_download`. Point a client process at it with HF_ENDPOINT=<url>, HF_TOKEN=hf_dummy,
HF_HUB_DISABLE_TELEMETRY=1 and a fresh HF_HOME.

Repos live under ROOT in the huggingface_hub cache layout (so ROOT also works as an offline HF_HUB_CACHE):
    ROOT/models--{org}--{name}/refs/main          sha (40 hex) of the newest commit
    ROOT/models--{org}--{name}/snapshots/{sha}/   the file tree of that commit (immutable; unchanged files are
                                                  hard links into the previous snapshot)

    with HubServer(tmp_path) as hub: ...          # hub.url == "http://127.0.0.1:<port>"; hub.requests logs calls
    python tests/hub_server.py ROOT               # serve in the foreground, print the url, log every request
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sys
import threading
import time
import traceback
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit


class HubError(Exception):
    def __init__(self, status: int, code: str | None, message: str):  # code: the X-Error-Code header
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@lru_cache(maxsize=4096)
def _git_oid(path: str, mtime_ns: int, size: int) -> str:
    """Git blob sha1: the oid and ETag the Hub gives regular (non-LFS) files."""
    digest = hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _oid(path: Path) -> str:
    st = path.stat()
    return _git_oid(str(path), st.st_mtime_ns, st.st_size)


def _safe(path: str) -> str:
    if not path or any(part in ("", ".", "..") for part in path.split("/")):
        raise HubError(400, None, f"invalid path in repo: {path!r}")
    return path


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class HubServer:
    def __init__(self, root: str | Path, verbose: bool = False):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.verbose = verbose
        self.requests: list[str] = []  # "METHOD /path" of every request, for assertions
        self.url = ""
        self._lock = threading.Lock()

    def __enter__(self) -> HubServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.hub = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def repo_dir(self, rtype: str, repo_id: str) -> Path:
        return self.root / f"{rtype}s--{repo_id.replace('/', '--')}"

    def repo_url(self, rtype: str, repo_id: str) -> str:
        return f"{self.url}/{repo_id}" if rtype == "model" else f"{self.url}/{rtype}s/{repo_id}"

    def resolve(self, rtype: str, repo_id: str, rev: str) -> tuple[str, Path]:
        """(commit sha, snapshot folder) for a branch name or a commit sha."""
        repo = self.repo_dir(rtype, repo_id)
        if not (repo / "refs" / "main").is_file():
            raise HubError(404, "RepoNotFound", f"Repository {repo_id} not found")
        if "/" not in rev and not rev.startswith(".") and (repo / "refs" / rev).is_file():
            rev = (repo / "refs" / rev).read_text().strip()
        if len(rev) != 40 or not (repo / "snapshots" / rev).is_dir():
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return rev, repo / "snapshots" / rev

    def create(self, rtype: str, repo_id: str) -> bool:
        """Create the repo with one empty commit on main, like the Hub; False if it already exists."""
        repo = self.repo_dir(rtype, repo_id)
        with self._lock:
            if (repo / "refs" / "main").is_file():
                return False
            sha = hashlib.sha1(f"{repo_id}{time.time_ns()}".encode()).hexdigest()
            (repo / "snapshots" / sha).mkdir(parents=True)
            (repo / "refs").mkdir()
            (repo / "refs" / "main").write_text(sha)
            return True

    def commit(self, rtype: str, repo_id: str, branch: str, ndjson: bytes) -> str:
        lines = [json.loads(line) for line in ndjson.splitlines() if line.strip()]
        header = next((x["value"] for x in lines if x["key"] == "header"), {})
        repo = self.repo_dir(rtype, repo_id)
        with self._lock:
            parent, old = self.resolve(rtype, repo_id, branch)
            if not (repo / "refs" / branch).is_file():
                raise HubError(400, None, f"can only commit to a branch, not to {branch!r}")
            if header.get("parentCommit") not in (None, parent):
                raise HubError(412, None, "A commit has happened since the parent commit")
            sha = hashlib.sha1(f"{parent}{time.time_ns()}".encode() + ndjson).hexdigest()
            tmp = repo / "snapshots" / f".tmp-{sha}"
            shutil.copytree(old, tmp, copy_function=_link_or_copy)
            try:
                for op in lines:
                    if op["key"] != "header":
                        _apply(tmp, op["key"], op["value"])
                tmp.rename(repo / "snapshots" / sha)
            except BaseException:
                shutil.rmtree(tmp)
                raise
            (repo / "refs" / f".{branch}.tmp").write_text(sha)
            os.replace(repo / "refs" / f".{branch}.tmp", repo / "refs" / branch)
            return sha


def _apply(snapshot: Path, key: str, value: dict) -> None:
    target = snapshot / _safe(value["path"].strip("/"))
    if key == "file":
        if target.exists():
            target.unlink()  # never write through a hard link into an older snapshot
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(value["content"]))
    elif key == "deletedFile" and target.is_file():
        target.unlink()
    elif key == "deletedFolder" and target.is_dir():
        shutil.rmtree(target)
    elif key in ("deletedFile", "deletedFolder"):
        raise HubError(404, "EntryNotFound", f"A file with this name doesn't exist: {value['path']}")
    else:
        raise HubError(400, None, f"unsupported commit operation {key!r} (this server has no LFS)")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: httpx reuses connections; every response sets Content-Length

    def do_GET(self) -> None:
        hub: HubServer = self.server.hub  # type: ignore[attr-defined]
        self.body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        hub.requests.append(f"{self.command} {url.path}")
        try:
            self._route(hub, [unquote(p) for p in url.path.split("/") if p])
        except HubError as e:
            self._send(e.status, {"error": e.message}, {"X-Error-Code": e.code} if e.code else {})
        except Exception as e:
            traceback.print_exc()
            self._send(500, {"error": f"{type(e).__name__}: {e}"})

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def _route(self, hub: HubServer, p: list[str]) -> None:
        m, rest = self.command, p[4:]
        if p[:1] == ["api"]:
            if m == "POST" and p[1:] == ["repos", "create"]:
                return self._create(hub, json.loads(self.body or b"{}"))
            if m == "POST" and p[1:] == ["validate-yaml"]:
                return self._send(200, {})
            if len(p) >= 4 and p[1] in ("models", "datasets", "spaces"):
                rtype, repo_id = p[1][:-1], f"{p[2]}/{p[3]}"
                if m == "GET" and (not rest or (len(rest) == 2 and rest[0] == "revision")):
                    return self._info(hub, rtype, repo_id, rest[1] if rest else "main")
                if m == "GET" and len(rest) >= 2 and rest[0] == "tree":
                    return self._tree(hub, rtype, repo_id, rest[1], "/".join(rest[2:]))
                if m == "POST" and len(rest) == 2 and rest[0] == "preupload":
                    return self._preupload(hub, rtype, repo_id, rest[1])
                if m == "POST" and len(rest) == 2 and rest[0] == "commit":
                    if self.query.get("create_pr"):
                        raise HubError(400, None, "pull requests are not supported by this test server")
                    sha = hub.commit(rtype, repo_id, rest[1], self.body)
                    url = f"{hub.repo_url(rtype, repo_id)}/commit/{sha}"
                    return self._send(200, {"commitOid": sha, "commitUrl": url, "pullRequestUrl": None})
        elif m in ("GET", "HEAD"):
            rtype = "model"
            if p[:1] in (["datasets"], ["spaces"]):
                rtype, p = p[0][:-1], p[1:]
            if len(p) >= 5 and p[2] == "resolve":
                return self._resolve(hub, rtype, f"{p[0]}/{p[1]}", p[3], "/".join(p[4:]))
            if len(p) >= 4 and p[1] == "resolve":  # a bare repo name ("gpt2") is never stored here
                raise HubError(404, "RepoNotFound", f"Repository {p[0]} not found")
        print(f"hub_server: unhandled {m} {self.path}", file=sys.stderr, flush=True)
        raise HubError(404, None, f"unhandled route {m} {self.path}")

    def _create(self, hub: HubServer, body: dict) -> None:
        rtype, repo_id = body.get("type") or "model", f"{body.get('organization') or 'user'}/{body['name']}"
        url = hub.repo_url(rtype, repo_id)
        if hub.create(rtype, repo_id):
            return self._send(200, {"url": url, "name": repo_id})
        self._send(409, {"error": "You already created this repo", "url": url})  # exist_ok=True still reads "url"

    def _info(self, hub: HubServer, rtype: str, repo_id: str, rev: str) -> None:
        sha, snap = hub.resolve(rtype, repo_id, rev)
        files = sorted(f.relative_to(snap).as_posix() for f in snap.rglob("*") if f.is_file())
        info = {"id": repo_id, "sha": sha, "private": False, "gated": False, "disabled": False, "tags": []}
        self._send(200, {**info, "siblings": [{"rfilename": f} for f in files]})

    def _tree(self, hub: HubServer, rtype: str, repo_id: str, rev: str, path: str) -> None:
        sha, snap = hub.resolve(rtype, repo_id, rev)
        base = snap / _safe(path) if path else snap
        if not base.is_dir():
            raise HubError(404, "EntryNotFound", f"{path} does not exist on {rev}")
        recursive = self.query.get("recursive", ["false"])[0].lower() == "true"
        entries = []
        for child in sorted(base.rglob("*") if recursive else base.iterdir()):
            rel = child.relative_to(snap).as_posix()
            if child.is_dir():
                entries.append({"type": "directory", "path": rel, "oid": hashlib.sha1(rel.encode()).hexdigest()})
            else:
                entries.append({"type": "file", "path": rel, "size": child.stat().st_size, "oid": _oid(child)})
        self._send(200, entries)

    def _preupload(self, hub: HubServer, rtype: str, repo_id: str, rev: str) -> None:
        # "regular" for every file => contents come base64-encoded in the commit (no LFS batch API, no Xet).
        # "oid" = git sha1 of the current remote file: the client drops unchanged files, as with the real Hub.
        sha, snap = hub.resolve(rtype, repo_id, rev)
        files = []
        for f in json.loads(self.body)["files"]:
            old = snap / _safe(f["path"])
            oid = _oid(old) if old.is_file() else None
            files.append({"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": oid})
        self._send(200, {"files": files, "commitOid": sha})

    def _resolve(self, hub: HubServer, rtype: str, repo_id: str, rev: str, path: str) -> None:
        sha, snap = hub.resolve(rtype, repo_id, rev)
        file = snap / _safe(path)
        if not file.is_file():
            raise HubError(404, "EntryNotFound", f"{path} does not exist on {rev}")
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(file.stat().st_size))  # HEAD too: it is the download size
        self.send_header("ETag", f'"{_oid(file)}"')
        self.send_header("X-Repo-Commit", sha)
        self.end_headers()
        if self.command == "GET":
            with open(file, "rb") as f:
                shutil.copyfileobj(f, self.wfile, 1 << 20)

    def _send(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:
        if self.server.hub.verbose:  # type: ignore[attr-defined]
            sys.stderr.write(f"hub_server: {format % args}\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/hub_server.py ROOT")
    with HubServer(sys.argv[1], verbose=True) as hub:
        print(hub.url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
