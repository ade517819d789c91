"""EndpointSlice mirroring: slices for Services without a selector, from hand-written Endpoints."""

from sliceplane.controllers.mirroring.planner import (
    CONTROLLER_NAME,
    LABEL_SKIP_MIRROR,
    MirrorPlan,
    plan_mirroring,
    should_mirror,
)

__all__ = ["CONTROLLER_NAME", "LABEL_SKIP_MIRROR", "MirrorPlan", "plan_mirroring", "should_mirror"]
