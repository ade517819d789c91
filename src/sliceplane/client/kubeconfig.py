"""kubeconfig files that the real kubectl reads, and that our own client reads back.

One cluster, one context, one user. The user has no credentials (the API server does not
authenticate) unless a bearer token is given. kubectl knows one server per cluster; when a
control plane has several API servers, the others are listed in a cluster extension that
kubectl ignores and `read_kubeconfig` returns after the first.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from sliceplane.api.errors import StatusError, bad_request

SERVERS_EXTENSION = "sliceplane.io/servers"


def kubeconfig_document(server_urls: str | list[str], *, name: str = "sliceplane", token: str | None = None,
                        namespace: str | None = None) -> dict[str, Any]:
    """The kubeconfig as a dict (pure)."""
    urls = [server_urls] if isinstance(server_urls, str) else list(server_urls)
    if not urls:
        raise ValueError("a kubeconfig needs at least one server URL")
    cluster: dict[str, Any] = {"server": urls[0]}
    if len(urls) > 1:
        cluster["extensions"] = [
            {"name": SERVERS_EXTENSION,
             "extension": {"apiVersion": "v1", "kind": "Config", "preferences": {}, "servers": urls}}
        ]
    context: dict[str, Any] = {"cluster": name, "user": name}
    if namespace:
        context["namespace"] = namespace
    user: dict[str, Any] = {"token": token} if token else {}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
        "users": [{"name": name, "user": user}],
        "preferences": {},
    }


def write_kubeconfig(path: str | os.PathLike[str], server_url: str | list[str], *, name: str = "sliceplane",
                     token: str | None = None, namespace: str | None = None) -> None:
    """Write atomically (readers never see half a file), readable by the owner only."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(kubeconfig_document(server_url, name=name, token=token, namespace=namespace),
                          sort_keys=False)
    fd, tmp = tempfile.mkstemp(prefix=".kubeconfig-", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def servers_from_document(doc: Any, context: str | None = None) -> tuple[list[str], str | None]:
    """(server URLs, bearer token) of the current (or given) context (pure)."""
    if not isinstance(doc, dict):
        raise _bad("not a kubeconfig document")
    ctx_name = context or doc.get("current-context")
    if not ctx_name:
        raise _bad("no current-context")
    ctx = _named(doc.get("contexts"), ctx_name, "context")
    cluster = _named(doc.get("clusters"), ctx.get("cluster", ""), "cluster")
    server = cluster.get("server")
    if not isinstance(server, str) or not server:
        raise _bad(f"cluster {ctx.get('cluster')!r} has no server")
    urls = [server]
    for ext in cluster.get("extensions") or []:
        if isinstance(ext, dict) and ext.get("name") == SERVERS_EXTENSION:
            for u in (ext.get("extension") or {}).get("servers") or []:
                if isinstance(u, str) and u not in urls:
                    urls.append(u)
    token: str | None = None
    user_name = ctx.get("user")
    if user_name:
        user = _named(doc.get("users"), user_name, "user")
        token = user.get("token") or None
    return [u.rstrip("/") for u in urls], token


def read_kubeconfig(path: str | os.PathLike[str], context: str | None = None) -> tuple[list[str], str | None]:
    """(server URLs, bearer token) from a kubeconfig file."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        raise _bad(f"invalid YAML: {e}") from None
    return servers_from_document(doc, context)


def _named(items: Any, name: str, what: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            body = item.get(what)
            return body if isinstance(body, dict) else {}
    raise _bad(f"{what} {name!r} not found")


def _bad(message: str) -> StatusError:
    return bad_request(f"invalid kubeconfig: {message}")
