"""The EndpointSlice controller: pure planning (`reconciler`) and its shell (`controller`)."""

from sliceplane.controllers.endpointslice.cache import ServiceSlices, SliceIndex
from sliceplane.controllers.endpointslice.reconciler import SlicePlan, reconcile, reconcile_changes
from sliceplane.controllers.endpointslice.tracker import WriteTracker
from sliceplane.controllers.endpointslice.triggertime import TriggerTimeTracker, format_trigger_time
from sliceplane.controllers.endpointslice.values import (
    ANNOTATION_TRIGGER_TIME,
    CONTROLLER_NAME,
    DEFAULT_MAX_ENDPOINTS_PER_SLICE,
    LABEL_HEADLESS,
    LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
    EndpointValue,
    PortValue,
    SliceValue,
)

__all__ = [
    "ANNOTATION_TRIGGER_TIME",
    "CONTROLLER_NAME",
    "DEFAULT_MAX_ENDPOINTS_PER_SLICE",
    "LABEL_HEADLESS",
    "LABEL_MANAGED_BY",
    "LABEL_SERVICE_NAME",
    "EndpointSliceController",
    "EndpointValue",
    "PortValue",
    "ServiceSlices",
    "SliceIndex",
    "SlicePlan",
    "SliceValue",
    "TriggerTimeTracker",
    "WriteTracker",
    "format_trigger_time",
    "reconcile",
    "reconcile_changes",
]


def __getattr__(name: str) -> object:
    # The shell pulls in the client (aiohttp); import it only when asked for.
    if name == "EndpointSliceController":
        from sliceplane.controllers.endpointslice.controller import EndpointSliceController

        return EndpointSliceController
    raise AttributeError(name)
