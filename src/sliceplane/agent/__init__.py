"""Node agents (kube-proxy's role): per-node service tables built from EndpointSlices.

`servicetable` is the pure merge; `agent.NodeAgent` the shell; `runner` runs many; `verify`
checks tables against the truth computed from Pods.
"""
