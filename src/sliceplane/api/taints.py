"""Kubernetes' well-known node taint keys (core/v1 well_known_taints), shared by the admission
defaults, the node lifecycle controller and the fleet's scheduler."""

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
