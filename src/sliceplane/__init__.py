"""sliceplane: a Kubernetes-compatible control plane for service endpoints."""

__version__ = "0.1.0"
