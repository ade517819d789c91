"""An async client for the Kubernetes REST API of one control plane (one or more API servers).

Exceptions:

    StatusError (sliceplane.api.errors)
      └─ ApiError            the server answered with a failure (a metav1.Status: code, reason)
    ConnectionError (builtin)
      └─ APIConnectionError  no API server could be reached (after failing over through all of them),
          │                  or a stream broke mid-way
          └─ APITimeoutError the request took longer than the client's timeout

One aiohttp session (one keep-alive connection pool) per client. Requests go to the API server
that answered last; a connection failure moves on to the next URL, so a client given every
server of a multi-server control plane survives losing some of them.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec

from sliceplane.api.errors import Cause, StatusError
from sliceplane.api.registry import ResourceInfo

log = logging.getLogger(__name__)

Obj = dict[str, Any]

PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}

# The reason Kubernetes gives for a code, for error bodies that are not a metav1.Status.
REASON_BY_CODE = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    406: "NotAcceptable", 409: "Conflict", 410: "Expired", 413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
    503: "ServiceUnavailable", 504: "Timeout",
}


class ApiError(StatusError):
    """The API server refused a request; `status` is the metav1.Status it sent (if any)."""

    status: Obj | None = None

    @classmethod
    def from_status(cls, status: Any, http_code: int) -> ApiError:
        if not isinstance(status, dict) or status.get("kind") != "Status":
            return cls(http_code, REASON_BY_CODE.get(http_code, "Unknown"), _text(status, http_code))
        details = status.get("details")
        causes: list[Cause] = []
        if isinstance(details, dict):
            details = dict(details)
            for c in details.pop("causes", None) or []:
                if isinstance(c, dict):
                    causes.append(Cause(c.get("reason", ""), c.get("message", ""), c.get("field", "")))
        code = status.get("code") or http_code
        err = cls(code, status.get("reason") or REASON_BY_CODE.get(code, "Unknown"),
                  status.get("message", ""), details if isinstance(details, dict) else None, causes)
        err.status = status
        return err


class APIConnectionError(ConnectionError):
    """No API server answered (or a stream broke); the informer resumes from its resourceVersion."""


class APITimeoutError(APIConnectionError):
    pass


def _text(body: Any, code: int) -> str:
    if isinstance(body, bytes | bytearray):
        text = body.decode("utf-8", "replace").strip()
    else:
        text = str(body or "").strip()
    return text or f"the server responded with HTTP {code}"


def path_for(info: ResourceInfo, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
    """The REST path of a collection (name None) or an object, as Kubernetes lays them out."""
    base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    if info.namespaced and namespace:
        base += f"/namespaces/{namespace}"
    path = f"{base}/{info.plural}"
    if name is not None:
        path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
    return path


def list_params(*, label_selector: str | None = None, field_selector: str | None = None,
                resource_version: str | None = None, limit: int | None = None,
                continue_: str | None = None) -> dict[str, str]:
    params: dict[str, str] = {}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    if resource_version is not None:
        params["resourceVersion"] = str(resource_version)
    if limit:
        params["limit"] = str(limit)
    if continue_:
        params["continue"] = continue_
    return params


def delete_options(*, propagation_policy: str | None = None, grace_period_seconds: int | None = None,
                   preconditions: dict[str, str] | None = None) -> Obj | None:
    """A DeleteOptions body, or None when every option is the server's default."""
    opts: Obj = {}
    if propagation_policy:
        opts["propagationPolicy"] = propagation_policy
    if grace_period_seconds is not None:
        opts["gracePeriodSeconds"] = int(grace_period_seconds)
    if preconditions:
        opts["preconditions"] = dict(preconditions)
    if not opts:
        return None
    return {"kind": "DeleteOptions", "apiVersion": "v1", **opts}


class _WatchLine(msgspec.Struct):
    type: str
    object: Obj


_decode_watch_line = msgspec.json.Decoder(_WatchLine).decode
_decode = msgspec.json.decode
_encode = msgspec.json.encode


def _namespace(info: ResourceInfo, namespace: str | None, obj: Obj | None = None) -> str | None:
    """Namespace for a single-object request: explicit, else the object's, else "default"."""
    if not info.namespaced:
        return None
    if namespace:
        return namespace
    if obj is not None:
        ns = (obj.get("metadata") or {}).get("namespace")
        if ns:
            return ns
    return "default"


class RESTClient:
    """Kubernetes REST verbs over aiohttp, with failover between API servers."""

    def __init__(self, base_urls: str | list[str], *, token: str | None = None, timeout: float = 30,
                 max_connections: int = 256, user_agent: str = "sliceplane/0.1") -> None:
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls:
            raise ValueError("RESTClient needs at least one base URL")
        self.base_urls = [u.rstrip("/") for u in urls]
        self.timeout = timeout
        self.max_connections = max_connections
        self._headers = {"Accept": "application/json", "User-Agent": user_agent}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        # A server that does not accept the connection within a few seconds is treated as down
        # (the request moves on to the next base URL); a slow answer is a timeout, not a failover.
        self._connect_timeout = min(timeout, 5.0)
        self._request_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=self._connect_timeout)
        self._current = 0
        self._session: aiohttp.ClientSession | None = None
        self.counts: Counter[str] = Counter()  # requests sent, by verb (get, list, create, ...)

    @classmethod
    def from_kubeconfig(cls, path: str, **kwargs: Any) -> RESTClient:
        from sliceplane.client.kubeconfig import read_kubeconfig

        urls, token = read_kubeconfig(path)
        return cls(urls, token=token, **kwargs)

    @property
    def url(self) -> str:
        """The API server currently in use."""
        return self.base_urls[self._current]

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> RESTClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- verbs --------------------------------------------------------------------------------

    async def get(self, info: ResourceInfo, name: str, namespace: str | None = None, *,
                  subresource: str | None = None) -> Obj:
        ns = _namespace(info, namespace)
        return await self._json("get", "GET", path_for(info, ns, name, subresource))

    async def list(self, info: ResourceInfo, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None, resource_version: str | None = None,
                   limit: int | None = None, continue_: str | None = None) -> Obj:
        params = list_params(label_selector=label_selector, field_selector=field_selector,
                             resource_version=resource_version, limit=limit, continue_=continue_)
        return await self._json("list", "GET", path_for(info, namespace), params=params)

    async def list_all(self, info: ResourceInfo, namespace: str | None = None, *, label_selector: str | None = None,
                       field_selector: str | None = None, page_size: int = 500) -> Obj:
        """Every item, following `continue` tokens; the list metadata is the last page's."""
        items: list[Obj] = []
        token: str | None = None
        while True:
            page = await self.list(info, namespace, label_selector=label_selector, field_selector=field_selector,
                                   limit=page_size, continue_=token)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                page["items"] = items
                return page

    async def create(self, info: ResourceInfo, obj: Obj, namespace: str | None = None, *,
                     subresource: str | None = None) -> Obj:
        """POST `obj`; with a subresource (e.g. "binding") to `.../NAME/<subresource>`, NAME from obj."""
        ns = _namespace(info, namespace, obj)
        if subresource:
            path = path_for(info, ns, (obj.get("metadata") or {}).get("name", ""), subresource)
        else:
            path = path_for(info, ns)
        return await self._json("create", "POST", path, body=_encode(obj))

    async def update(self, info: ResourceInfo, obj: Obj, *, subresource: str | None = None) -> Obj:
        meta = obj.get("metadata") or {}
        path = path_for(info, _namespace(info, None, obj), meta.get("name", ""), subresource)
        return await self._json("update", "PUT", path, body=_encode(obj))

    async def patch(self, info: ResourceInfo, name: str, patch: dict[str, Any] | list[Any], *,
                    namespace: str | None = None, patch_type: str = "merge", subresource: str | None = None) -> Obj:
        content_type = PATCH_CONTENT_TYPES.get(patch_type)
        if content_type is None:
            raise ValueError(f"patch_type must be one of {sorted(PATCH_CONTENT_TYPES)}, not {patch_type!r}")
        path = path_for(info, _namespace(info, namespace), name, subresource)
        return await self._json("patch", "PATCH", path, body=_encode(patch), content_type=content_type)

    async def delete(self, info: ResourceInfo, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None, grace_period_seconds: int | None = None,
                     preconditions: dict[str, str] | None = None) -> Obj:
        opts = delete_options(propagation_policy=propagation_policy, grace_period_seconds=grace_period_seconds,
                              preconditions=preconditions)
        path = path_for(info, _namespace(info, namespace), name)
        return await self._json("delete", "DELETE", path, body=_encode(opts) if opts else None)

    async def watch(self, info: ResourceInfo, namespace: str | None = None, *, resource_version: str | None,
                    label_selector: str | None = None, field_selector: str | None = None,
                    allow_bookmarks: bool = True, timeout_seconds: int | None = None,
                    ) -> AsyncIterator[tuple[str, Obj]]:
        """Yield (type, object) from a watch stream: ADDED, MODIFIED, DELETED, BOOKMARK.

        An ERROR event raises ApiError (410 Expired when the resourceVersion is too old); a
        stream that breaks raises APIConnectionError; a stream the server ends just returns.
        """
        async with contextlib.aclosing(self.watch_lines(
            info, namespace, resource_version=resource_version, label_selector=label_selector,
            field_selector=field_selector, allow_bookmarks=allow_bookmarks, timeout_seconds=timeout_seconds,
        )) as lines:
            async for line in lines:
                yield _watch_event(line)

    async def watch_lines(self, info: ResourceInfo, namespace: str | None = None, *, resource_version: str | None,
                          label_selector: str | None = None, field_selector: str | None = None,
                          allow_bookmarks: bool = True, timeout_seconds: int | None = None,
                          ) -> AsyncIterator[bytes]:
        """Like `watch`, but yield each raw event line (without its newline) undecoded.

        For consumers that count bytes on the wire or decode (or not) themselves; an ERROR event
        is yielded like any other line. A stream that breaks raises APIConnectionError.
        """
        params = list_params(label_selector=label_selector, field_selector=field_selector,
                             resource_version=resource_version)
        params["watch"] = "true"
        if allow_bookmarks:
            params["allowWatchBookmarks"] = "true"
        if timeout_seconds is not None:
            params["timeoutSeconds"] = str(int(timeout_seconds))
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout, sock_read=None)
        resp = await self._send("watch", "GET", path_for(info, namespace), params=params, timeout=timeout)
        try:
            if resp.status >= 400:
                raise ApiError.from_status(_decode_or_text(await resp.read()), resp.status)
            pending: list[bytes] = []  # an unfinished line, in pieces (large objects span many chunks)
            try:
                async for chunk in resp.content.iter_any():
                    pending.append(chunk)
                    if b"\n" not in chunk:
                        continue
                    *lines, tail = b"".join(pending).split(b"\n")
                    pending = [tail] if tail else []
                    for line in lines:
                        if line.strip():
                            yield line
            except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as e:
                raise APIConnectionError(f"watch stream from {resp.url} broke: {e!r}") from e
            rest = b"".join(pending)
            if rest.strip():
                yield rest
        finally:
            resp.close()  # a watch connection is never reused mid-stream

    # --- transport ----------------------------------------------------------------------------

    def _client_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self._headers, auto_decompress=True,
                timeout=self._request_timeout,
            )
        return self._session

    async def _send(self, verb: str, method: str, path: str, *, params: dict[str, str] | None = None,
                    body: bytes | None = None, content_type: str = "application/json",
                    timeout: aiohttp.ClientTimeout | None = None) -> aiohttp.ClientResponse:
        """Send to the current server, failing over on connection errors; returns an open response."""
        session = self._client_session()
        headers = {"Content-Type": content_type} if body is not None else None
        self.counts[verb] += 1
        last: BaseException | None = None
        n = len(self.base_urls)
        for i in range(n):
            idx = (self._current + i) % n
            url = self.base_urls[idx] + path
            try:
                resp = await session.request(method, url, params=params, data=body, headers=headers,
                                             timeout=timeout or self._request_timeout)
            except aiohttp.ClientConnectionError as e:
                last = e
                log.debug("%s %s failed: %r", method, url, e)
                continue
            except TimeoutError as e:
                raise APITimeoutError(f"{method} {url}: no answer within {self.timeout}s") from e
            if idx != self._current:
                log.info("API server %s unreachable, using %s", self.base_urls[self._current], self.base_urls[idx])
                self._current = idx
            return resp
        raise APIConnectionError(f"{method} {path}: no API server reachable ({', '.join(self.base_urls)}): "
                                 f"{last!r}") from last

    async def _json(self, verb: str, method: str, path: str, *, params: dict[str, str] | None = None,
                    body: bytes | None = None, content_type: str = "application/json") -> Obj:
        resp = await self._send(verb, method, path, params=params, body=body, content_type=content_type)
        try:
            data = await resp.read()
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as e:
            raise APIConnectionError(f"{method} {path}: response broke: {e!r}") from e
        except TimeoutError as e:
            raise APITimeoutError(f"{method} {path}: no answer within {self.timeout}s") from e
        finally:
            resp.release()
        if resp.status >= 400:
            raise ApiError.from_status(_decode_or_text(data), resp.status)
        if not data:
            return {}
        try:
            return _decode(data)
        except msgspec.DecodeError as e:
            raise ApiError(500, "InternalError", f"{method} {path}: undecodable response: {e}") from None

    def request_count(self) -> int:
        return sum(self.counts.values())


def _decode_or_text(data: bytes) -> Any:
    try:
        return _decode(data)
    except msgspec.DecodeError:
        return data


def _watch_event(line: bytes) -> tuple[str, Obj]:
    try:
        ev = _decode_watch_line(line)
    except msgspec.DecodeError as e:
        raise ApiError(500, "InternalError", f"undecodable watch event: {e}") from None
    if ev.type == "ERROR":
        raise ApiError.from_status(ev.object, int(ev.object.get("code") or 500))
    return ev.type, ev.object
