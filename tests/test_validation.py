"""Validation: each rule as a table row of (object change -> Kubernetes' `field: message`)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from sliceplane.api import registry
from sliceplane.api.errors import invalid
from sliceplane.api.validation import validate, validate_name

DELETE = object()

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
             "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
             "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
               "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
               "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
QUALIFIED_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                 "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                 "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                   "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                   "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
PORT_RANGE = "must be between 1 and 65535, inclusive"


def changed(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of obj with dotted paths (`spec__ports__0__port`) set or DELETEd."""
    out = copy.deepcopy(obj)
    for dotted, value in changes.items():
        parts = [int(p) if p.isdigit() else p for p in dotted.split("__")]
        cur: Any = out
        for p in parts[:-1]:
            cur = cur[p]
        if value is DELETE:
            del cur[parts[-1]]
        else:
            cur[parts[-1]] = value
    return out


def messages(info: registry.ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    return [f"{c.field}: {c.message}" if c.field else c.message for c in validate(info, obj, old)]


SLICE = {
    "apiVersion": "discovery.k8s.io/v1",
    "kind": "EndpointSlice",
    "metadata": {"name": "web-abc12", "namespace": "default",
                 "labels": {"kubernetes.io/service-name": "web",
                            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
    "addressType": "IPv4",
    "endpoints": [
        {"addresses": ["10.244.1.5"], "conditions": {"ready": True, "serving": True, "terminating": False},
         "nodeName": "node-1", "zone": "zone-a", "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "default"},
         "hints": {"forZones": [{"name": "zone-a"}]}},
    ],
    "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
}

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
    "spec": {
        "type": "ClusterIP",
        "selector": {"app": "web"},
        "clusterIP": "10.96.0.10",
        "clusterIPs": ["10.96.0.10"],
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "sessionAffinity": "None",
        "internalTrafficPolicy": "Cluster",
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                  {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}],
    },
}

POD_SPEC = {
    "restartPolicy": "Always",
    "dnsPolicy": "ClusterFirst",
    "containers": [{"name": "app", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent",
                    "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}]}],
}

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "default",
                                                       "labels": {"app": "web"}},
       "spec": copy.deepcopy(POD_SPEC)}

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web", "tier": "frontend"}}, "spec": copy.deepcopy(POD_SPEC)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    },
}

REPLICA_SET = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "metadata": {"name": "web-5d8f7c", "namespace": "default"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d8f7c"}},
             "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "5d8f7c"}},
                          "spec": copy.deepcopy(POD_SPEC)}},
}

ENDPOINTS = {
    "apiVersion": "v1",
    "kind": "Endpoints",
    "metadata": {"name": "web", "namespace": "default"},
    "subsets": [{"addresses": [{"ip": "10.244.1.5", "nodeName": "node-1"}],
                 "notReadyAddresses": [{"ip": "10.244.2.7"}],
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}],
}

NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]}}
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"},
             "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
LEASE = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
         "metadata": {"name": "kube-controller-manager", "namespace": "kube-system"},
         "spec": {"holderIdentity": "cm-1", "leaseDurationSeconds": 15, "leaseTransitions": 0}}
CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "default"},
              "data": {"anything": "goes", "spec": "is not checked"}}


@pytest.mark.parametrize(
    "info, obj",
    [(registry.ENDPOINT_SLICES, SLICE), (registry.SERVICES, SERVICE), (registry.PODS, POD),
     (registry.DEPLOYMENTS, DEPLOYMENT), (registry.REPLICA_SETS, REPLICA_SET), (registry.ENDPOINTS, ENDPOINTS),
     (registry.NODES, NODE), (registry.NAMESPACES, NAMESPACE), (registry.LEASES, LEASE),
     (registry.CONFIG_MAPS, CONFIG_MAP)],
    ids=lambda v: v.kind if isinstance(v, registry.ResourceInfo) else None,
)
def test_valid_objects_have_no_causes(info: registry.ResourceInfo, obj: dict[str, Any]) -> None:
    assert messages(info, obj) == []
    assert messages(info, obj, copy.deepcopy(obj)) == []


META_CASES = [
    ("name-missing", registry.PODS, changed(POD, metadata__name=DELETE),
     ["metadata.name: Required value: name or generateName is required"]),
    ("generate-name-ok", registry.PODS, changed(POD, metadata__name=DELETE, metadata__generateName="web-"), []),
    ("name-uppercase", registry.PODS, changed(POD, metadata__name="Web"),
     [f'metadata.name: Invalid value: "Web": {SUBDOMAIN_MSG}']),
    ("name-dots-ok-for-pod", registry.PODS, changed(POD, metadata__name="web.v1"), []),
    ("service-name-dns1035", registry.SERVICES, changed(SERVICE, metadata__name="1web"),
     [f'metadata.name: Invalid value: "1web": {DNS1035_MSG}']),
    ("namespace-name-dots", registry.NAMESPACES, changed(NAMESPACE, metadata__name="team.a"),
     ['metadata.name: Invalid value: "team.a": must not contain dots']),
    ("namespace-name-long", registry.NAMESPACES, changed(NAMESPACE, metadata__name="a" * 64),
     [f'metadata.name: Invalid value: "{"a" * 64}": must be no more than 63 characters']),
    ("label-key", registry.PODS, changed(POD, metadata__labels={"-bad": "x"}),
     [f'metadata.labels: Invalid value: "-bad": {QUALIFIED_MSG}']),
    ("label-value", registry.PODS, changed(POD, metadata__labels={"app": "a b"}),
     [f'metadata.labels: Invalid value: "a b": {LABEL_VALUE_MSG}']),
    ("label-value-type", registry.PODS, changed(POD, metadata__labels={"replicas": 3}),
     ["metadata.labels[replicas]: Invalid value: 3: must be a string"]),
    ("annotation-key-case-ok", registry.PODS, changed(POD, metadata__annotations={"Example.COM/Note": "x"}), []),
    ("annotation-too-big", registry.CONFIG_MAPS,
     changed(CONFIG_MAP, metadata__annotations={"big": "x" * (256 * 1024)}),
     ["metadata.annotations: Too long: may not be more than 262144 bytes"]),
    ("opaque-name", registry.CONFIG_MAPS, changed(CONFIG_MAP, metadata__name="Bad_Name"),
     [f'metadata.name: Invalid value: "Bad_Name": {SUBDOMAIN_MSG}']),
    ("finalizer", registry.PODS, changed(POD, metadata__finalizers=["example.com/x", "bad/x/y", "custom",
                                                                "foregroundDeletion"]),
     ["metadata.finalizers: Invalid value: \"bad/x/y\": a qualified name must consist of alphanumeric "
      "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or "
      "'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an "
      "optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
      'metadata.finalizers[2]: Invalid value: "custom": name is neither a standard finalizer name nor is it fully '
      'qualified']),
    ("generate-name-bad", registry.PODS, changed(POD, metadata__name=DELETE, metadata__generateName="Web-"),
     [f'metadata.generateName: Invalid value: "Web-": {SUBDOMAIN_MSG}']),
    ("owner-reference", registry.PODS,
     changed(POD, metadata__ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1",
                                              "uid": "u1", "controller": True},
                                             {"apiVersion": "apps/", "kind": "", "name": "x", "uid": "u2",
                                              "controller": True}]),
     ['metadata.ownerReferences.apiVersion: Invalid value: "apps/": version must not be empty',
      'metadata.ownerReferences.kind: Invalid value: "": kind must not be empty',
      'metadata.ownerReferences: Invalid value: [{"apiVersion":"apps/v1","controller":true,"kind":"ReplicaSet",'
      '"name":"web-1","uid":"u1"},{"apiVersion":"apps/","controller":true,"kind":"","name":"x","uid":"u2"}]: '
      'Only one reference can have Controller set to true. Found "true" in references for ReplicaSet/web-1 and /x']),
    ("metadata-not-object", registry.PODS, changed(POD, metadata="x"),
     ['metadata: Invalid value: "x": must be an object',
      "metadata.name: Required value: name or generateName is required"]),
]

SLICE_CASES = [
    ("address-type-missing", changed(SLICE, addressType=DELETE), ["addressType: Required value"]),
    ("address-type-null", changed(SLICE, addressType=None), ["addressType: Required value"]),
    ("address-type-unsupported", changed(SLICE, addressType="foo"),
     ['addressType: Unsupported value: "foo": supported values: "FQDN", "IPv4", "IPv6"']),
    ("too-many-endpoints", changed(SLICE, endpoints=[{"addresses": ["10.0.0.1"]}] * 1001),
     ["endpoints: Too many: 1001: must have at most 1000 items"]),
    ("no-addresses", changed(SLICE, endpoints__0__addresses=[]),
     ["endpoints[0].addresses: Required value: must contain at least 1 address"]),
    ("too-many-addresses", changed(SLICE, endpoints__0__addresses=["10.0.0.1"] * 101),
     ["endpoints[0].addresses: Too many: 101: must have at most 100 items"]),
    ("not-an-ip", changed(SLICE, endpoints__0__addresses=["not-an-ip"]),
     ['endpoints[0].addresses[0]: Invalid value: "not-an-ip": must be a valid IPv4 address',
      'endpoints[0].addresses[0]: Invalid value: "not-an-ip": must be a valid IP address']),
    ("unspecified", changed(SLICE, endpoints__0__addresses=["0.0.0.0"]),
     ['endpoints[0].addresses[0]: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)']),
    ("ipv6-link-local", changed(SLICE, addressType="IPv6", endpoints__0__addresses=["fe80::1", "fd00::7"]),
     ['endpoints[0].addresses[0]: Invalid value: "fe80::1": may not be in the link-local range '
      '(169.254.0.0/16, fe80::/10)']),
    ("multicast-link-local", changed(SLICE, endpoints__0__addresses=["224.0.0.5"]),
     ['endpoints[0].addresses[0]: Invalid value: "224.0.0.5": may not be in the link-local multicast range '
      '(224.0.0.0/24, ff02::/10)']),
    ("zone-not-checked", changed(SLICE, endpoints__0__zone="Zone A!"), []),
    ("ipv6-in-ipv4", changed(SLICE, endpoints__0__addresses=["fd00::1"]),
     ['endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address']),
    ("ipv4-in-ipv6", changed(SLICE, addressType="IPv6"),
     ['endpoints[0].addresses[0]: Invalid value: "10.244.1.5": must be a valid IPv6 address']),
    # Go reads an IPv4-mapped IPv6 address as IPv4: refused under IPv6, taken under IPv4.
    ("mapped-in-ipv6", changed(SLICE, addressType="IPv6", endpoints__0__addresses=["::ffff:10.244.1.5"]),
     ['endpoints[0].addresses[0]: Invalid value: "::ffff:10.244.1.5": must be a valid IPv6 address']),
    ("mapped-in-ipv4", changed(SLICE, endpoints__0__addresses=["::ffff:10.244.1.5"]), []),
    ("loopback", changed(SLICE, endpoints__0__addresses=["127.0.0.1"]),
     ['endpoints[0].addresses[0]: Invalid value: "127.0.0.1": may not be in the loopback range '
      '(127.0.0.0/8, ::1/128)']),
    ("link-local", changed(SLICE, endpoints__0__addresses=["169.254.1.1"]),
     ['endpoints[0].addresses[0]: Invalid value: "169.254.1.1": may not be in the link-local range '
      '(169.254.0.0/16, fe80::/10)']),
    ("fqdn-ok", changed(SLICE, addressType="FQDN", endpoints__0__addresses=["web.example.com"]), []),
    ("fqdn-one-segment", changed(SLICE, addressType="FQDN", endpoints__0__addresses=["web"]),
     ['endpoints[0].addresses[0]: Invalid value: "web": should be a domain with at least two segments '
      'separated by dots']),
    ("address-not-string", changed(SLICE, endpoints__0__addresses=[10]),
     ["endpoints[0].addresses[0]: Invalid value: 10: must be a string"]),
    ("hostname", changed(SLICE, endpoints__0__hostname="web.1"),
     ['endpoints[0].hostname: Invalid value: "web.1": must not contain dots']),
    ("node-name", changed(SLICE, endpoints__0__nodeName="Node_1"),
     [f'endpoints[0].nodeName: Invalid value: "Node_1": {SUBDOMAIN_MSG}']),
    ("too-many-zone-hints", changed(SLICE, endpoints__0__hints={"forZones": [{"name": f"z{i}"} for i in range(9)]}),
     ["endpoints[0].hints.forZones: Too many: 9: must have at most 8 items"]),
    ("duplicate-zone-hint", changed(SLICE, endpoints__0__hints={"forZones": [{"name": "a"}, {"name": "a"}]}),
     ['endpoints[0].hints.forZones[1].name: Duplicate value: "a"']),
    ("conditions-type", changed(SLICE, endpoints__0__conditions__ready="yes"),
     ['endpoints[0].conditions.ready: Invalid value: "yes": must be a boolean']),
    ("too-many-ports", changed(SLICE, ports=[{"name": f"p{i}", "port": 80 + i, "protocol": "TCP"} for i in range(101)]),
     ["ports: Too many: 101: must have at most 100 items"]),
    ("port-name", changed(SLICE, ports__0__name="HTTP"),
     [f'ports[0].name: Invalid value: "HTTP": {LABEL_MSG}']),
    ("duplicate-port-name", changed(SLICE, ports=[{"name": "", "port": 80, "protocol": "TCP"},
                                                  {"name": "", "port": 81, "protocol": "TCP"}]),
     ['ports[1].name: Duplicate value: ""']),
    ("protocol", changed(SLICE, ports__0__protocol="HTTP"),
     ['ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"']),
    ("protocol-missing", changed(SLICE, ports__0__protocol=DELETE), ["ports[0].protocol: Required value"]),
    ("port-nil-ok", changed(SLICE, ports=[{"name": "", "port": None, "protocol": "TCP"}]), []),
    ("port-zero", changed(SLICE, ports__0__port=0), [f"ports[0].port: Invalid value: 0: {PORT_RANGE}"]),
    ("port-too-big", changed(SLICE, ports__0__port=70000), [f"ports[0].port: Invalid value: 70000: {PORT_RANGE}"]),
    ("port-string", changed(SLICE, ports__0__port="80"), ['ports[0].port: Invalid value: "80": must be an integer']),
    ("endpoints-not-list", changed(SLICE, endpoints={"a": 1}),
     ['endpoints: Invalid value: {"a":1}: must be a list']),
]

SERVICE_CASES = [
    ("port-zero", changed(SERVICE, spec__ports__0__port=0), [f"spec.ports[0].port: Invalid value: 0: {PORT_RANGE}"]),
    ("port-string", changed(SERVICE, spec__ports__0__port="eighty"),
     ['spec.ports[0].port: Invalid value: "eighty": must be an integer']),
    ("ports-required", changed(SERVICE, spec__ports=[]), ["spec.ports: Required value"]),
    ("port-null", changed(SERVICE, spec__ports__0__port=None), [f"spec.ports[0].port: Invalid value: 0: {PORT_RANGE}"]),
    ("headless-no-ports", changed(SERVICE, spec__ports=[], spec__clusterIP="None", spec__clusterIPs=["None"]), []),
    ("name-required-when-many", changed(SERVICE, spec__ports__1__name=DELETE),
     ["spec.ports[1].name: Required value"]),
    ("single-port-no-name", changed(SERVICE, spec__ports=[{"port": 80, "targetPort": 80, "protocol": "TCP"}]), []),
    ("duplicate-name", changed(SERVICE, spec__ports__1__name="http"), ['spec.ports[1].name: Duplicate value: "http"']),
    ("port-name-label", changed(SERVICE, spec__ports__0__name="Http"),
     [f'spec.ports[0].name: Invalid value: "Http": {LABEL_MSG}']),
    ("protocol", changed(SERVICE, spec__ports__0__protocol="tcp"),
     ['spec.ports[0].protocol: Unsupported value: "tcp": supported values: "SCTP", "TCP", "UDP"']),
    ("target-port-range", changed(SERVICE, spec__ports__0__targetPort=65536),
     [f"spec.ports[0].targetPort: Invalid value: 65536: {PORT_RANGE}"]),
    ("target-port-name", changed(SERVICE, spec__ports__1__targetPort="web--metrics"),
     ['spec.ports[1].targetPort: Invalid value: "web--metrics": must be no more than 15 characters',
      'spec.ports[1].targetPort: Invalid value: "web--metrics": must not contain consecutive hyphens']
     if len("web--metrics") > 15 else
     ['spec.ports[1].targetPort: Invalid value: "web--metrics": must not contain consecutive hyphens']),
    ("target-port-no-letter", changed(SERVICE, spec__ports__1__targetPort="8080-1"),
     ['spec.ports[1].targetPort: Invalid value: "8080-1": must contain at least one letter (a-z)']),
    ("target-port-bool", changed(SERVICE, spec__ports__0__targetPort=True),
     ["spec.ports[0].targetPort: Invalid value: true: must be an integer or a string"]),
    ("type", changed(SERVICE, spec__type="Foo"),
     ['spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", '
      '"NodePort"']),
    ("node-port-on-cluster-ip", changed(SERVICE, spec__ports__0__nodePort=30080),
     ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
    ("node-port-range", changed(SERVICE, spec__type="NodePort", spec__ports__0__nodePort=80),
     ["spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid "
      "ports is 30000-32767"]),
    ("node-port-ok", changed(SERVICE, spec__type="NodePort", spec__ports__0__nodePort=30080), []),
    ("external-name-required", changed(SERVICE, spec__type="ExternalName", spec__clusterIP=DELETE,
                                       spec__clusterIPs=DELETE, spec__ipFamilies=DELETE,
                                       spec__ipFamilyPolicy=DELETE),
     ["spec.externalName: Required value"]),
    ("external-name-ok", changed(SERVICE, spec__type="ExternalName", spec__externalName="db.example.com.",
                                 spec__clusterIP=DELETE, spec__clusterIPs=DELETE, spec__ipFamilies=DELETE,
                                 spec__ipFamilyPolicy=DELETE, spec__ports=[]), []),
    ("external-name-with-cluster-ip", changed(SERVICE, spec__type="ExternalName", spec__externalName="db.example.com",
                                              spec__ipFamilies=DELETE, spec__ipFamilyPolicy=DELETE),
     ["spec.clusterIPs: Forbidden: may not be set for ExternalName services"]),
    ("external-name-invalid", changed(SERVICE, spec__type="ExternalName", spec__externalName="DB.example.com.",
                                      spec__clusterIP=DELETE, spec__clusterIPs=DELETE, spec__ipFamilies=DELETE,
                                      spec__ipFamilyPolicy=DELETE),
     [f'spec.externalName: Invalid value: "DB.example.com": {SUBDOMAIN_MSG}']),
    ("selector-value", changed(SERVICE, spec__selector={"app": "web app"}),
     [f'spec.selector: Invalid value: "web app": {LABEL_VALUE_MSG}']),
    ("cluster-ip-invalid", changed(SERVICE, spec__clusterIP="10.96.0", spec__clusterIPs=["10.96.0"]),
     ['spec.clusterIPs[0]: Invalid value: "10.96.0": must be a valid IP address, (e.g. 10.9.8.7 or '
      '2001:db8::ffff)']),
    ("cluster-ips-mismatch", changed(SERVICE, spec__clusterIPs=["10.96.0.11"]),
     ['spec.clusterIPs: Invalid value: []string{"10.96.0.11"}: first value must match `clusterIP`']),
    ("ip-family", changed(SERVICE, spec__ipFamilies=["IPv5"]),
     ['spec.ipFamilies[0]: Unsupported value: "IPv5": supported values: "IPv4", "IPv6"']),
    ("ip-family-duplicate", changed(SERVICE, spec__ipFamilies=["IPv4", "IPv4"], spec__ipFamilyPolicy="RequireDualStack"),
     ['spec.ipFamilies[1]: Duplicate value: "IPv4"']),
    ("single-stack-two-families", changed(SERVICE, spec__ipFamilies=["IPv4", "IPv6"]),
     ['spec.ipFamilyPolicy: Invalid value: "SingleStack": must be \'RequireDualStack\' or \'PreferDualStack\' '
      'when multiple IP families are specified']),
    ("family-mismatch", changed(SERVICE, spec__ipFamilies=["IPv6"]),
     ['spec.clusterIPs[0]: Invalid value: "10.96.0.10": expected an IPv6 value as indicated by `ipFamilies[0]`']),
    ("dual-stack-ok", changed(SERVICE, spec__clusterIPs=["10.96.0.10", "fd00:10:96::a"],
                              spec__ipFamilies=["IPv4", "IPv6"], spec__ipFamilyPolicy="RequireDualStack"), []),
    ("two-v4-cluster-ips", changed(SERVICE, spec__clusterIPs=["10.96.0.10", "10.96.0.11"],
                                   spec__ipFamilyPolicy="PreferDualStack"),
     ['spec.clusterIPs: Invalid value: []string{"10.96.0.10", "10.96.0.11"}: may specify no more than one IP for '
      'each IP family']),
    ("three-cluster-ips", changed(SERVICE, spec__clusterIPs=["10.96.0.10", "fd00::a", "10.96.0.12"],
                                  spec__ipFamilyPolicy="PreferDualStack"),
     ['spec.clusterIPs: Invalid value: []string{"10.96.0.10", "fd00::a", "10.96.0.12"}: may only hold up to 2 '
      'values',
      'spec.clusterIPs: Invalid value: []string{"10.96.0.10", "fd00::a", "10.96.0.12"}: may specify no more '
      'than one IP for each IP family']),
    ("none-not-alone", changed(SERVICE, spec__clusterIP="None", spec__clusterIPs=["None", "fd00::a"],
                               spec__ipFamilyPolicy="PreferDualStack"),
     ['spec.clusterIPs: Invalid value: []string{"None", "fd00::a"}: \'None\' must be the first and only value']),
    ("single-stack-two-ips", changed(SERVICE, spec__clusterIPs=["10.96.0.10", "fd00::a"],
                                     spec__ipFamilies=["IPv4", "IPv6"]),
     ['spec.ipFamilyPolicy: Invalid value: "SingleStack": must be \'RequireDualStack\' or \'PreferDualStack\' '
      'when multiple cluster IPs are specified']),
    ("cluster-ip-only-normalized", changed(SERVICE, spec__clusterIPs=DELETE), []),
    ("ip-family-policy", changed(SERVICE, spec__ipFamilyPolicy="Dual"),
     ['spec.ipFamilyPolicy: Unsupported value: "Dual": supported values: "PreferDualStack", "RequireDualStack", '
      '"SingleStack"']),
    ("session-affinity", changed(SERVICE, spec__sessionAffinity="Cookie"),
     ['spec.sessionAffinity: Unsupported value: "Cookie": supported values: "ClientIP", "None"']),
    ("client-ip-timeout", changed(SERVICE, spec__sessionAffinity="ClientIP",
                                  spec__sessionAffinityConfig={"clientIP": {"timeoutSeconds": 0}}),
     ["spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 and less than "
      "86400"]),
    ("client-ip-ok", changed(SERVICE, spec__sessionAffinity="ClientIP",
                             spec__sessionAffinityConfig={"clientIP": {"timeoutSeconds": 10800}}), []),
    ("affinity-config-with-none", changed(SERVICE, spec__sessionAffinityConfig={"clientIP": {"timeoutSeconds": 5}}),
     ["spec.sessionAffinityConfig: Forbidden: must not be set when session affinity is None"]),
    ("internal-traffic-policy", changed(SERVICE, spec__internalTrafficPolicy="Node"),
     ['spec.internalTrafficPolicy: Unsupported value: "Node": supported values: "Cluster", "Local"']),
    ("external-traffic-policy-cluster-ip", changed(SERVICE, spec__externalTrafficPolicy="Local"),
     ['spec.externalTrafficPolicy: Invalid value: "Local": may only be set when `type` is \'NodePort\' or '
      '\'LoadBalancer\'']),
    ("traffic-distribution", changed(SERVICE, spec__trafficDistribution="Nearest"),
     ['spec.trafficDistribution: Unsupported value: "Nearest": supported values: "PreferClose"']),
    ("traffic-distribution-ok", changed(SERVICE, spec__trafficDistribution="PreferClose"), []),
]

POD_CASES = [
    ("containers-required", changed(POD, spec__containers=[]), ["spec.containers: Required value"]),
    ("container-name-required", changed(POD, spec__containers__0__name=DELETE),
     ["spec.containers[0].name: Required value"]),
    ("container-name-label", changed(POD, spec__containers__0__name="App"),
     [f'spec.containers[0].name: Invalid value: "App": {LABEL_MSG}']),
    ("container-name-duplicate", changed(POD, spec__containers=[POD_SPEC["containers"][0]] * 2),
     ['spec.containers[1].name: Duplicate value: "app"']),
    ("image-required", changed(POD, spec__containers__0__image=""), ["spec.containers[0].image: Required value"]),
    ("container-port", changed(POD, spec__containers__0__ports__0__containerPort=0),
     [f"spec.containers[0].ports[0].containerPort: Invalid value: 0: {PORT_RANGE}"]),
    ("container-port-name", changed(POD, spec__containers__0__ports__0__name="HTTP"),
     ['spec.containers[0].ports[0].name: Invalid value: "HTTP": must contain only alpha-numeric characters '
      '(a-z, 0-9), and hyphens (-)', 'spec.containers[0].ports[0].name: Invalid value: "HTTP": must contain at '
      'least one letter (a-z)']),
    ("container-port-type", changed(POD, spec__containers__0__ports__0__containerPort="80"),
     ['spec.containers[0].ports[0].containerPort: Invalid value: "80": must be an integer']),
    ("restart-policy", changed(POD, spec__restartPolicy="Sometimes"),
     ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"']),
    ("resources-ok", changed(POD, spec__containers__0__resources={
        "limits": {"cpu": "1", "memory": "1Gi", "example.com/gpu": "2"},
        "requests": {"cpu": "500m", "memory": "1Gi", "example.com/gpu": "2"}}), []),
    ("negative-request", changed(POD, spec__containers__0__resources={"requests": {"memory": "-5Mi"}}),
     ['spec.containers[0].resources.requests[memory]: Invalid value: "-5Mi": must be greater than or equal to 0']),
    ("request-over-limit", changed(POD, spec__containers__0__resources={"limits": {"cpu": "1"},
                                                                         "requests": {"cpu": "2"}}),
     ['spec.containers[0].resources.requests[cpu]: Invalid value: "2": must be less than or equal to cpu limit '
      'of 1']),
    ("resource-name", changed(POD, spec__containers__0__resources={"requests": {"foo bar": "1", "pods": "1"}}),
     ['spec.containers[0].resources.requests[foo bar]: Invalid value: "foo bar": name part must consist of '
      "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
      "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
      "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
      'spec.containers[0].resources.requests[foo bar]: Invalid value: "foo bar": must be a standard resource for '
      "containers",
      'spec.containers[0].resources.requests[pods]: Invalid value: "pods": must be a standard resource for '
      "containers"]),
    ("extended-fraction", changed(POD, spec__containers__0__resources={"limits": {"example.com/gpu": "500m"}}),
     ['spec.containers[0].resources.limits[example.com/gpu]: Invalid value: "500m": must be an integer']),
    ("pull-policy", changed(POD, spec__containers__0__imagePullPolicy="Maybe"),
     ['spec.containers[0].imagePullPolicy: Unsupported value: "Maybe": supported values: "Always", '
      '"IfNotPresent", "Never"']),
    ("init-container-name-clash", changed(POD, spec__initContainers=[{"name": "app", "image": "busybox"}]),
     ['spec.initContainers[0].name: Duplicate value: "app"']),
    ("volumes-and-mounts-ok", changed(POD, spec__volumes=[{"name": "tmp", "emptyDir": {}}],
                                      spec__containers__0__volumeMounts=[{"name": "tmp", "mountPath": "/tmp"}]), []),
    ("mount-unknown-volume", changed(POD, spec__containers__0__volumeMounts=[{"name": "data", "mountPath": "/d"}]),
     ['spec.containers[0].volumeMounts[0].name: Not found: "data"']),
    ("mount-path-required", changed(POD, spec__volumes=[{"name": "tmp", "emptyDir": {}}],
                                    spec__containers__0__volumeMounts=[{"name": "tmp"}]),
     ["spec.containers[0].volumeMounts[0].mountPath: Required value"]),
    ("volume-duplicate", changed(POD, spec__volumes=[{"name": "tmp", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]),
     ['spec.volumes[1].name: Duplicate value: "tmp"']),
]

WORKLOAD_CASES = [
    ("selector-required", registry.DEPLOYMENTS, changed(DEPLOYMENT, spec__selector=DELETE),
     ["spec.selector: Required value",
      'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web", "tier":"frontend"}: '
      "`selector` does not match template `labels`"]),
    ("selector-empty", registry.DEPLOYMENTS, changed(DEPLOYMENT, spec__selector={}),
     ["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
      "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"]),
    ("selector-mismatch", registry.DEPLOYMENTS, changed(DEPLOYMENT, spec__selector__matchLabels={"app": "db"}),
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web", "tier":"frontend"}: '
      "`selector` does not match template `labels`"]),
    ("selector-expression-ok", registry.DEPLOYMENTS,
     changed(DEPLOYMENT, spec__selector={"matchExpressions": [{"key": "tier", "operator": "In",
                                                               "values": ["frontend"]}]}), []),
    ("selector-expression-values", registry.DEPLOYMENTS,
     changed(DEPLOYMENT, spec__selector={"matchExpressions": [{"key": "tier", "operator": "In"}]}),
     ["spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or "
      "'NotIn'",
      "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
      "MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"tier\", Operator:\"In\", "
      "Values:[]string(nil)}}}: invalid label selector"]),
    ("selector-operator", registry.DEPLOYMENTS,
     changed(DEPLOYMENT, spec__selector={"matchExpressions": [{"key": "tier", "operator": "Gt", "values": ["1"]}]}),
     ['spec.selector.matchExpressions[0].operator: Invalid value: "Gt": not a valid selector operator',
      "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
      "MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"tier\", Operator:\"Gt\", "
      "Values:[]string{\"1\"}}}}: invalid label selector"]),
    ("replicas-negative", registry.DEPLOYMENTS, changed(DEPLOYMENT, spec__replicas=-1),
     ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
    ("replicas-string", registry.DEPLOYMENTS, changed(DEPLOYMENT, spec__replicas="3"),
     ['spec.replicas: Invalid value: "3": must be an integer']),
    ("revision-history-negative", registry.DEPLOYMENTS, changed(DEPLOYMENT, spec__revisionHistoryLimit=-2),
     ["spec.revisionHistoryLimit: Invalid value: -2: must be greater than or equal to 0"]),
    ("strategy-type", registry.DEPLOYMENTS, changed(DEPLOYMENT, spec__strategy={"type": "BlueGreen"}),
     ['spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:"BlueGreen", '
      'RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: "Recreate", "RollingUpdate"']),
    ("template-label", registry.DEPLOYMENTS,
     changed(DEPLOYMENT, spec__selector__matchLabels={"app": "web"},
             spec__template__metadata__labels={"app": "web", "bad key": "x"}),
     [f'spec.template.labels: Invalid value: "bad key": {QUALIFIED_MSG}']),
    ("recreate-with-rolling", registry.DEPLOYMENTS,
     changed(DEPLOYMENT, spec__strategy__type="Recreate"),
     ["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"]),
    ("both-zero", registry.DEPLOYMENTS,
     changed(DEPLOYMENT, spec__strategy__rollingUpdate={"maxSurge": 0, "maxUnavailable": "0%"}),
     ['spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, '
      'StrVal:"0%"}: may not be 0 when `maxSurge` is 0']),
    ("bad-percent", registry.DEPLOYMENTS,
     changed(DEPLOYMENT, spec__strategy__rollingUpdate__maxSurge="25"),
     ['spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"25"}: '
      "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex "
      "used for validation is '[0-9]+%')"]),
    ("max-unavailable-over-100", registry.DEPLOYMENTS,
     changed(DEPLOYMENT, spec__strategy__rollingUpdate__maxUnavailable="110%"),
     ['spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, '
      'StrVal:"110%"}: must not be greater than 100%']),
    ("negative-surge", registry.DEPLOYMENTS,
     changed(DEPLOYMENT, spec__strategy__rollingUpdate__maxSurge=-1),
     ["spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or equal to 0"]),
    ("template-restart-policy", registry.DEPLOYMENTS,
     changed(DEPLOYMENT, spec__template__spec__restartPolicy="Never"),
     ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"']),
    ("template-container", registry.DEPLOYMENTS,
     changed(DEPLOYMENT, spec__template__spec__containers__0__image=DELETE),
     ["spec.template.spec.containers[0].image: Required value"]),
    ("progress-deadline", registry.DEPLOYMENTS,
     changed(DEPLOYMENT, spec__minReadySeconds=600),
     ["spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"]),
    ("rs-selector-mismatch", registry.REPLICA_SETS,
     changed(REPLICA_SET, spec__template__metadata__labels={"app": "web"}),
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
      "`selector` does not match template `labels`"]),
    ("rs-replicas", registry.REPLICA_SETS, changed(REPLICA_SET, spec__replicas=-3),
     ["spec.replicas: Invalid value: -3: must be greater than or equal to 0"]),
]

OTHER_CASES = [
    ("endpoints-ip", registry.ENDPOINTS, changed(ENDPOINTS, subsets__0__addresses__0__ip="not-an-ip"),
     ['subsets[0].addresses[0].ip: Invalid value: "not-an-ip": must be a valid IP address, (e.g. 10.9.8.7 or '
      '2001:db8::ffff)']),
    ("endpoints-loopback", registry.ENDPOINTS, changed(ENDPOINTS, subsets__0__notReadyAddresses__0__ip="127.0.0.2"),
     ['subsets[0].notReadyAddresses[0].ip: Invalid value: "127.0.0.2": may not be in the loopback range '
      '(127.0.0.0/8, ::1/128)']),
    ("endpoints-empty-subset", registry.ENDPOINTS, changed(ENDPOINTS, subsets=[{"ports": [{"port": 80}]}]),
     ["subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"]),
    ("endpoints-port", registry.ENDPOINTS, changed(ENDPOINTS, subsets__0__ports__0__port=0),
     [f"subsets[0].ports[0].port: Invalid value: 0: {PORT_RANGE}"]),
    ("endpoints-port-name-required", registry.ENDPOINTS,
     changed(ENDPOINTS, subsets__0__ports=[{"port": 80, "protocol": "TCP"}, {"port": 81, "protocol": "TCP"}]),
     ["subsets[0].ports[0].name: Required value", "subsets[0].ports[1].name: Required value"]),
    ("node-cidr", registry.NODES, changed(NODE, spec__podCIDRs=["10.244.1.0/33"], spec__podCIDR="10.244.1.0/33"),
     ['spec.podCIDRs[0]: Invalid value: "10.244.1.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or '
      '2001:db8::/64)']),
    ("node-namespace", registry.NODES, changed(NODE, metadata__namespace="default"),
     ["metadata.namespace: Forbidden: not allowed on this type"]),
    ("node-taint-effect", registry.NODES, changed(NODE, spec__taints=[{"key": "a", "effect": "Never"}]),
     ['spec.taints[0].effect: Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", '
      '"NoExecute"']),
    ("namespace-finalizer", registry.NAMESPACES, changed(NAMESPACE, spec__finalizers=["custom"]),
     ['spec.finalizers[0]: Invalid value: "custom": name is neither a standard finalizer name nor is it fully '
      'qualified']),
    ("lease-duration", registry.LEASES, changed(LEASE, spec__leaseDurationSeconds=0),
     ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]),
    ("lease-transitions", registry.LEASES, changed(LEASE, spec__leaseTransitions=-1),
     ["spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"]),
]


@pytest.mark.parametrize("case, info, obj, expected", META_CASES, ids=[c[0] for c in META_CASES])
def test_metadata(case: str, info: registry.ResourceInfo, obj: dict, expected: list[str]) -> None:
    assert messages(info, obj) == expected


@pytest.mark.parametrize("case, obj, expected", SLICE_CASES, ids=[c[0] for c in SLICE_CASES])
def test_endpoint_slice(case: str, obj: dict, expected: list[str]) -> None:
    assert messages(registry.ENDPOINT_SLICES, obj) == expected


@pytest.mark.parametrize("case, obj, expected", SERVICE_CASES, ids=[c[0] for c in SERVICE_CASES])
def test_service(case: str, obj: dict, expected: list[str]) -> None:
    assert messages(registry.SERVICES, obj) == expected


@pytest.mark.parametrize("case, obj, expected", POD_CASES, ids=[c[0] for c in POD_CASES])
def test_pod(case: str, obj: dict, expected: list[str]) -> None:
    assert messages(registry.PODS, obj) == expected


@pytest.mark.parametrize("case, info, obj, expected", WORKLOAD_CASES, ids=[c[0] for c in WORKLOAD_CASES])
def test_workloads(case: str, info: registry.ResourceInfo, obj: dict, expected: list[str]) -> None:
    assert messages(info, obj) == expected


@pytest.mark.parametrize("case, info, obj, expected", OTHER_CASES, ids=[c[0] for c in OTHER_CASES])
def test_other_kinds(case: str, info: registry.ResourceInfo, obj: dict, expected: list[str]) -> None:
    assert messages(info, obj) == expected


UPDATE_CASES = [
    ("slice-address-type", registry.ENDPOINT_SLICES, SLICE,
     changed(SLICE, addressType="IPv6", endpoints__0__addresses=["fd00::5"]),
     ['addressType: Invalid value: "IPv6": field is immutable']),
    ("slice-endpoints-change-ok", registry.ENDPOINT_SLICES, SLICE,
     changed(SLICE, endpoints__0__addresses=["10.244.1.6"]), []),
    ("service-cluster-ip", registry.SERVICES, SERVICE,
     changed(SERVICE, spec__clusterIP="10.96.0.11", spec__clusterIPs=["10.96.0.11"]),
     ['spec.clusterIPs[0]: Invalid value: []string{"10.96.0.11"}: may not change once set']),
    ("service-cluster-ip-kept-when-empty", registry.SERVICES, SERVICE,
     changed(SERVICE, spec__clusterIP=DELETE, spec__clusterIPs=DELETE), []),
    ("service-to-external-name", registry.SERVICES, SERVICE,
     changed(SERVICE, spec__type="ExternalName", spec__externalName="db.example.com", spec__clusterIP="",
             spec__clusterIPs=DELETE, spec__ipFamilies=DELETE, spec__ipFamilyPolicy=DELETE), []),
    ("service-add-secondary-ok", registry.SERVICES, SERVICE,
     changed(SERVICE, spec__clusterIPs=["10.96.0.10", "fd00::a"], spec__ipFamilies=["IPv4", "IPv6"],
             spec__ipFamilyPolicy="PreferDualStack"), []),
    ("service-family-change", registry.SERVICES, SERVICE,
     changed(SERVICE, spec__clusterIP="fd00::a", spec__clusterIPs=["fd00::a"], spec__ipFamilies=["IPv6"]),
     ['spec.clusterIPs[0]: Invalid value: []string{"fd00::a"}: may not change once set',
      'spec.ipFamilies[0]: Invalid value: []core.IPFamily{"IPv6"}: may not change once set']),
    ("service-headless-stays", registry.SERVICES,
     changed(SERVICE, spec__clusterIP="None", spec__clusterIPs=["None"]),
     changed(SERVICE, spec__clusterIP="None", spec__clusterIPs=["None"], spec__ports=[]), []),
    ("service-ports-change-ok", registry.SERVICES, SERVICE, changed(SERVICE, spec__ports__0__port=8000), []),
    ("deployment-selector", registry.DEPLOYMENTS, DEPLOYMENT,
     changed(DEPLOYMENT, spec__selector__matchLabels={"tier": "frontend"}),
     ['spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"tier":"frontend"}, '
      "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"]),
    ("deployment-scale-ok", registry.DEPLOYMENTS, DEPLOYMENT, changed(DEPLOYMENT, spec__replicas=10), []),
    ("deployment-image-ok", registry.DEPLOYMENTS, DEPLOYMENT,
     changed(DEPLOYMENT, spec__template__spec__containers__0__image="nginx:1.28"), []),
    ("rs-selector", registry.REPLICA_SETS, REPLICA_SET,
     changed(REPLICA_SET, spec__selector__matchLabels={"app": "web"}),
     ['spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web"}, '
      "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"]),
    ("pod-image-ok", registry.PODS, POD, changed(POD, spec__containers__0__image="nginx:1.28"), []),
    ("pod-tolerations-added-ok", registry.PODS, POD,
     changed(POD, spec__tolerations=[{"key": "a", "operator": "Exists"}]), []),
    ("pod-restart-policy", registry.PODS, POD, changed(POD, spec__restartPolicy="Never"),
     ["spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
      "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
      "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
      "negative)"]),
    ("name-immutable", registry.PODS, POD, changed(POD, metadata__name="web-2"),
     ['metadata.name: Invalid value: "web-2": field is immutable']),
    ("creation-timestamp-ignored", registry.PODS, changed(POD, metadata__creationTimestamp="2020-01-01T00:00:00Z"),
     changed(POD, metadata__creationTimestamp="2021-01-01T00:00:00Z"), []),
    ("uid-immutable", registry.PODS, changed(POD, metadata__uid="a"), changed(POD, metadata__uid="b"),
     ['metadata.uid: Invalid value: "b": field is immutable']),
    ("labels-mutable", registry.PODS, POD, changed(POD, metadata__labels={"app": "web", "x": "y"}), []),
]


@pytest.mark.parametrize("case, info, old, new, expected", UPDATE_CASES, ids=[c[0] for c in UPDATE_CASES])
def test_updates(case: str, info: registry.ResourceInfo, old: dict, new: dict, expected: list[str]) -> None:
    assert messages(info, new, old) == expected


@pytest.mark.parametrize(
    "info, name, expected",
    [
        (registry.PODS, "web-1", []),
        (registry.PODS, "web.example", []),
        (registry.SERVICES, "web", []),
        (registry.SERVICES, "web.v1", [f'metadata.name: Invalid value: "web.v1": {DNS1035_MSG}']),
        (registry.NAMESPACES, "kube-system", []),
        (registry.ENDPOINT_SLICES, "web-x7k2p", []),
        (registry.PODS, "..", ["metadata.name: Invalid value: \"..\": may not be '..'"]),
        (registry.CONFIG_MAPS, "a/b", ["metadata.name: Invalid value: \"a/b\": may not contain '/'"]),
    ],
    ids=["pod", "pod-dots", "svc", "svc-dots", "ns", "slice", "dotdot", "slash"],
)
def test_validate_name(info: registry.ResourceInfo, name: str, expected: list[str]) -> None:
    assert [f"{c.field}: {c.message}" for c in validate_name(info, name)] == expected


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@pytest.mark.parametrize(
    "info, base",
    [(registry.ENDPOINT_SLICES, SLICE), (registry.SERVICES, SERVICE), (registry.PODS, POD),
     (registry.DEPLOYMENTS, DEPLOYMENT), (registry.REPLICA_SETS, REPLICA_SET), (registry.ENDPOINTS, ENDPOINTS),
     (registry.NODES, NODE), (registry.NAMESPACES, NAMESPACE), (registry.LEASES, LEASE)],
    ids=lambda v: v.kind if isinstance(v, registry.ResourceInfo) else None,
)
def test_wrong_types_never_raise(info: registry.ResourceInfo, base: dict[str, Any]) -> None:
    """Garbage at every depth of a valid object gives causes on create and update, never an exception."""
    garbage: list[Any] = [None, 7, "x", [1, None], {"a": [1]}, True]
    for path in _paths(base):
        for value in garbage:
            bad = copy.deepcopy(base)
            cur: Any = bad
            for key in path[:-1]:
                cur = cur[key]
            cur[path[-1]] = copy.deepcopy(value)
            for causes in (validate(info, bad), validate(info, bad, base), validate(info, base, bad)):
                assert all(c.type and c.message for c in causes)


def test_causes_feed_invalid_error() -> None:
    causes = validate(registry.SERVICES, changed(SERVICE, spec__ports__0__port=0))
    err = invalid("Service", "web", causes)
    assert err.code == 422
    assert err.message == f'Service "web" is invalid: spec.ports[0].port: Invalid value: 0: {PORT_RANGE}'


FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.mark.parametrize("manifest", ["guestbook-all-in-one.yaml", "bookinfo.yaml"])
def test_real_manifests_are_valid(manifest: str) -> None:
    """What a new user applies first must pass, as it does on a real cluster."""
    docs = [d for d in yaml.safe_load_all((FIXTURES / manifest).read_text()) if d]
    assert docs
    for doc in docs:
        info = registry.by_kind(doc["apiVersion"], doc["kind"])
        assert info is not None
        doc["metadata"].setdefault("namespace", "default")
        assert messages(info, doc) == [], doc["metadata"]["name"]
