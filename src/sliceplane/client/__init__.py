"""Async Kubernetes client: REST verbs, informers, work queues, kubeconfig files."""

from sliceplane.client.informer import Delta, Informer, relist_diff
from sliceplane.client.kubeconfig import read_kubeconfig, write_kubeconfig
from sliceplane.client.rest import APIConnectionError, ApiError, APITimeoutError, RESTClient, path_for
from sliceplane.client.workqueue import ShutDown, WorkQueue

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "ApiError",
    "Delta",
    "Informer",
    "RESTClient",
    "ShutDown",
    "WorkQueue",
    "path_for",
    "read_kubeconfig",
    "relist_diff",
    "write_kubeconfig",
]
