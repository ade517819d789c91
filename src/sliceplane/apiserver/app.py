"""The API server: the aiohttp application (`build_app`) and a runnable server (`APIServer`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import msgspec
from aiohttp import web

from sliceplane.api import registry
from sliceplane.api.errors import StatusError, internal, method_not_allowed, too_large, unavailable
from sliceplane.apiserver import discovery
from sliceplane.apiserver.config import ServerConfig
from sliceplane.apiserver.handlers import RequestContext, ResourceHandlers, optional_module
from sliceplane.apiserver.ipalloc import ServiceAllocations
from sliceplane.apiserver.metrics import APIMetrics
from sliceplane.apiserver.routes import ResourcePath, parse_resource_path
from sliceplane.apiserver.watchcache import WatchCache, resource_label
from sliceplane.store.base import (
    Store,
    StoreError,
    StoreOutcomeUnknownError,
    StoreUnavailableError,
    ValueTooLargeError,
    open_store,
)

log = logging.getLogger(__name__)

_encode = msgspec.json.Encoder().encode

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", registry.NODE_LEASE_NAMESPACE)
SYSTEM_NAMESPACES_INTERVAL = 60.0

class APIState:
    """Everything one server holds: store, watch cache, allocators, metrics, handlers."""

    def __init__(self, store: Store, config: ServerConfig) -> None:
        self.store = store
        self.config = config
        self.metrics = APIMetrics()
        self.cache = WatchCache(store, capacity=config.watch_cache_capacity, max_bytes=config.watch_cache_bytes,
                                watcher_buffer=config.watcher_buffer,
                                bookmark_interval=config.bookmark_interval, metrics=self.metrics)
        self.allocations = ServiceAllocations.build(config.service_cidr, config.service_cidr_v6,
                                                    config.node_port_range)
        self.handlers = ResourceHandlers(store, config, self.cache, self.metrics, self.allocations)
        self.server_address = f"{config.host}:{config.port}"
        self.started = False
        # How often missing system namespaces are re-created (Kubernetes: every minute).
        self.system_namespaces_interval = SYSTEM_NAMESPACES_INTERVAL
        self._system_namespaces_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.cache.start()
        # Allocators are rebuilt from what is stored: the store is the only source of truth.
        for co in self.cache.list(registry.SERVICES):
            self.allocations.mark(co.obj)
        await self.ensure_system_namespaces()
        self._system_namespaces_task = asyncio.create_task(self._keep_system_namespaces(),
                                                           name="system-namespaces")
        self.started = True

    async def ensure_system_namespaces(self) -> list[str]:
        """Create the system namespaces that are missing (Kubernetes' system namespaces
        controller does the same); returns the ones created."""
        created = []
        for ns in SYSTEM_NAMESPACES:
            if self.cache.get(registry.NAMESPACES, None, ns) is None:
                try:
                    await self.handlers.create(registry.NAMESPACES, None, {"metadata": {"name": ns}},
                                               RequestContext(field_validation="Ignore"))
                    created.append(ns)
                except StatusError as e:
                    if e.code != 409:
                        raise
        return created

    async def _keep_system_namespaces(self) -> None:
        while True:
            await asyncio.sleep(self.system_namespaces_interval)
            try:
                created = await self.ensure_system_namespaces()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("re-creating system namespaces failed")
                continue
            if created:
                log.info("re-created system namespaces %s", ", ".join(created))

    async def stop(self) -> None:
        self.started = False
        task, self._system_namespaces_task = self._system_namespaces_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.cache.stop()


STATE_KEY = web.AppKey("sliceplane_state", APIState)
# (verb, resource, subresource) of a resource request, for the request counter.
METRIC_KEY: Any = web.RequestKey("sliceplane_metric", tuple) if hasattr(web, "RequestKey") else "sliceplane_metric"


def build_app(store: Store, config: ServerConfig | None = None) -> web.Application:
    """The aiohttp application over an opened store; starting it starts the watch cache.

    The caller owns the store (starts it before and closes it after).
    """
    config = config or ServerConfig()
    state = APIState(store, config)
    app = web.Application(client_max_size=config.max_request_bytes + 1024 * 1024,
                          middlewares=[_errors_middleware])
    app[STATE_KEY] = state
    app.router.add_route("*", "/{tail:.*}", _dispatch)

    async def on_startup(_: web.Application) -> None:
        await state.start()

    async def on_shutdown(_: web.Application) -> None:
        state.cache.close_all_watchers()

    async def on_cleanup(_: web.Application) -> None:
        await state.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app


def state_of(app: web.Application) -> APIState:
    return app[STATE_KEY]


def _status_response(e: StatusError) -> web.Response:
    return web.Response(body=_encode(e.to_status()), status=e.code, content_type="application/json")


_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
            406: "NotAcceptable", 409: "Conflict", 413: "RequestEntityTooLarge", 415: "UnsupportedMediaType",
            429: "TooManyRequests", 503: "ServiceUnavailable", 504: "Timeout"}


@web.middleware
async def _errors_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every failure becomes a metav1.Status body; every request is counted."""
    state = request.app[STATE_KEY]
    try:
        resp = await handler(request)
    except StatusError as e:
        resp = _status_response(e)
    except StoreOutcomeUnknownError as e:
        # 503 would say the request was not processed; this write may have been (Kubernetes: 504).
        resp = _status_response(StatusError(504, "Timeout", f"Timeout: request did not complete within "
                                                             f"requested timeout - {e}"))
    except StoreUnavailableError as e:
        resp = _status_response(unavailable(f"storage is unavailable: {e}"))
    except ValueTooLargeError as e:
        # etcd refusing a value for its size is the client's object being too large, not a server fault.
        resp = _status_response(too_large(str(e) or "etcdserver: request is too large"))
    except StoreError as e:
        log.exception("store error on %s %s", request.method, request.path)
        resp = _status_response(internal(str(e)))
    except web.HTTPException as e:
        # aiohttp's own refusals (oversized or malformed requests) still answer with a Status.
        reason = _REASONS.get(e.status, "InternalError" if e.status >= 500 else "BadRequest")
        resp = _status_response(StatusError(e.status, reason, e.text or e.reason))
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as e:
        log.exception("unexpected error on %s %s", request.method, request.path)
        resp = _status_response(internal(f"{type(e).__name__}: {e}"))
    verb, resource, sub = request.get(METRIC_KEY, ("", "", ""))
    if verb:
        state.metrics.requests.labels(verb, resource, sub, str(resp.status)).inc()
    return resp


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encode(obj), status=status, content_type="application/json")


def _verb(method: str, rp: ResourcePath, watch: bool) -> str:
    if rp.legacy_watch or (method == "GET" and rp.name is None and watch):
        return "watch"
    if method == "GET":
        return "get" if rp.name is not None else "list"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if rp.name is not None else "deletecollection"
    return method.lower()


async def _dispatch(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    path = request.path.rstrip("/") or "/"
    method = request.method
    rp = parse_resource_path(path)
    if rp is not None:
        watch = (request.query.get("watch") or "").lower() in ("true", "1")
        request[METRIC_KEY] = (_verb(method, rp, watch), resource_label(rp.info), rp.subresource or "")
        return await state.handlers.handle(request, rp)
    if method not in ("GET", "HEAD"):
        if _is_discovery_path(path):
            raise method_not_allowed("the server does not allow this method on the requested resource")
        raise not_found_status()
    request[METRIC_KEY] = ("get", "", "")
    return await _serve_fixed(request, state, path)


def _is_discovery_path(path: str) -> bool:
    """A discovery document's own path (a write to it is 405); deeper paths that name no served
    resource (e.g. /apis/batch/v1/namespaces/default/jobs) are 404, as Kubernetes answers them."""
    if path in ("/api", "/apis", "/api/v1", "/version"):
        return True
    parts = path.split("/")[2:] if path.startswith("/apis/") else []
    return 1 <= len(parts) <= 2 and discovery.served_group(parts[0])


# kubectl asks for the first spelling (which Go's mime parser cannot read back); servers answer
# with the second, and take either.
OPENAPI_V2_PROTOBUF_ACCEPTED = ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
                                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
OPENAPI_V2_PROTOBUF = OPENAPI_V2_PROTOBUF_ACCEPTED[1]


def not_found_status() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource")


async def _serve_fixed(request: web.Request, state: APIState, path: str) -> web.StreamResponse:
    if path == "/version":
        return _json(discovery.VERSION_INFO)
    if path in ("/healthz", "/readyz", "/livez") or path.startswith(("/healthz/", "/readyz/", "/livez/")):
        if not state.started:
            return web.Response(text="not ready", status=503)
        return web.Response(text="ok", content_type="text/plain")
    if path == "/metrics":
        body, ctype = state.metrics.exposition()
        resp = web.Response(body=body)
        resp.headers["Content-Type"] = ctype
        return resp
    if path == "/api":
        return _json(discovery.api_versions(_server_address(request)))
    if path == "/apis":
        return _json(discovery.api_group_list())
    if path == "/api/v1":
        return _json(discovery.api_resource_list("", "v1"))
    if path.startswith("/apis/"):
        parts = path.split("/")[2:]
        if len(parts) == 1 and discovery.served_group(parts[0]):
            return _json(discovery.api_group(parts[0]))
        if len(parts) == 2:
            doc = discovery.api_resource_list(parts[0], parts[1])
            if doc is not None and parts[0]:
                return _json(doc)
        raise not_found_status()
    if path.startswith("/openapi/"):
        return await _serve_openapi(path, request.headers.get("Accept", ""))
    raise not_found_status()


def _server_address(request: web.Request) -> str:
    return request.host or "127.0.0.1"


async def _serve_openapi(path: str, accept: str) -> web.Response:
    openapi = optional_module("openapi")
    if openapi is None:
        raise not_found_status()
    if path == "/openapi/v2":
        if any(media in accept for media in OPENAPI_V2_PROTOBUF_ACCEPTED):
            return web.Response(body=openapi.v2_document_protobuf(), content_type=OPENAPI_V2_PROTOBUF)
        return _raw_json(openapi.v2_document_json())
    if path == "/openapi/v3":
        return _json(openapi.v3_index())
    prefix = "/openapi/v3/"
    if path.startswith(prefix):
        parts = path[len(prefix):].split("/")
        if parts == ["api", "v1"]:
            return _raw_json(openapi.v3_document_json("", "v1"))
        if len(parts) == 3 and parts[0] == "apis":
            return _raw_json(openapi.v3_document_json(parts[1], parts[2]))
    raise not_found_status()


def _raw_json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


class APIServer:
    """A server on host:port over the store named by `config.store_url`."""

    def __init__(self, config: ServerConfig | None = None, *, store: Store | None = None) -> None:
        self.config = config or ServerConfig()
        self._own_store = store is None
        self.store: Store | None = store
        self.app: web.Application | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port = self.config.port

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def state(self) -> APIState:
        assert self.app is not None
        return self.app[STATE_KEY]

    async def start(self) -> None:
        if self.store is None:
            self.store = open_store(self.config.store_url, self.config.compaction)
        if self._own_store:
            await self.store.start()
        self.app = build_app(self.store, self.config)
        # Handlers are not cancelled when a client goes away (a write completes, as in Kubernetes);
        # watches notice a departed client themselves.
        self._runner = web.AppRunner(self.app, shutdown_timeout=2.0, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await self._site.start()
        server = self._site._server
        if server is not None and getattr(server, "sockets", None):
            self.port = server.sockets[0].getsockname()[1]
        self.state.server_address = f"{self.config.host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner.cleanup()
            self._runner = None
        if self.store is not None and self._own_store:
            with contextlib.suppress(Exception):
                await self.store.close()

    async def __aenter__(self) -> APIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve_forever(config: ServerConfig) -> None:  # pragma: no cover - used by the CLI
    server = APIServer(config)
    await server.start()
    log.info("API server listening on %s", server.url)
    try:
        while True:
            await asyncio.sleep(3600)
    finally:
        await server.stop()
