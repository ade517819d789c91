"""schema.json and strict-field pruning."""

from __future__ import annotations

from typing import Any

import pytest

from sliceplane.api import registry, schema


def _deployment(**extra_container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "nginx", **extra_container}]},
            },
        },
    }


@pytest.mark.parametrize(
    "info",
    [r for r in registry.RESOURCES],
    ids=lambda r: r.qualified,
)
def test_every_served_kind_has_a_definition(info: registry.ResourceInfo) -> None:
    d = schema.definition_for(info)
    assert d is not None
    assert {"apiVersion", "kind", "metadata"} <= set(d["properties"])
    assert {"group": info.group, "kind": info.kind, "version": info.version} in d["gvk"]


def test_every_reference_resolves() -> None:
    missing = set()
    for name, d in schema.definitions().items():
        for field, t in d["properties"].items():
            ref = schema.element_definition(t)
            if ref and schema.definition(ref) is None:
                missing.add(f"{name}.{field} -> {ref}")
    assert missing == set()


@pytest.mark.parametrize(
    ("def_name", "field", "expected"),
    [
        ("io.k8s.api.core.v1.ServicePort", "targetPort", "IntOrString"),
        ("io.k8s.api.apps.v1.RollingUpdateDeployment", "maxSurge", "IntOrString"),
        ("io.k8s.api.core.v1.ResourceRequirements", "limits", ["map", "Quantity"]),
        ("io.k8s.api.coordination.v1.LeaseSpec", "renewTime", "MicroTime"),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "creationTimestamp", "Time"),
        ("io.k8s.api.core.v1.PodSpec", "containers", ["array", "io.k8s.api.core.v1.Container"]),
        ("io.k8s.api.core.v1.Secret", "data", ["map", "byte"]),
        ("io.k8s.api.discovery.v1.EndpointSlice", "ports", ["array", "io.k8s.api.discovery.v1.EndpointPort"]),
        ("io.k8s.api.core.v1.PodSpec", "noSuchField", None),
    ],
    ids=["targetPort", "maxSurge", "limits", "renewTime", "creationTimestamp", "containers", "secret-data",
         "slice-ports", "unknown"],
)
def test_field_types(def_name: str, field: str, expected: Any) -> None:
    assert schema.field_type(def_name, field) == expected


@pytest.mark.parametrize(
    ("def_name", "field", "expected"),
    [
        ("io.k8s.api.core.v1.PodSpec", "containers", ("merge", "name")),
        ("io.k8s.api.core.v1.PodSpec", "initContainers", ("merge", "name")),
        ("io.k8s.api.core.v1.PodSpec", "volumes", ("merge,retainKeys", "name")),
        ("io.k8s.api.core.v1.PodSpec", "tolerations", ("", "")),
        ("io.k8s.api.core.v1.Container", "ports", ("merge", "containerPort")),
        ("io.k8s.api.core.v1.Container", "env", ("merge", "name")),
        ("io.k8s.api.core.v1.Container", "volumeMounts", ("merge", "mountPath")),
        ("io.k8s.api.core.v1.ServiceSpec", "ports", ("merge", "port")),
        ("io.k8s.api.core.v1.PodStatus", "conditions", ("merge", "type")),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "ownerReferences", ("merge", "uid")),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers", ("merge", "")),
        ("io.k8s.api.apps.v1.DeploymentSpec", "strategy", ("retainKeys", "")),
        ("io.k8s.api.discovery.v1.EndpointSlice", "endpoints", ("", "")),
        ("no.such.Definition", "x", ("", "")),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_patch_meta(def_name: str, field: str, expected: tuple[str, str]) -> None:
    assert schema.patch_meta(def_name, field) == expected


@pytest.mark.parametrize(
    ("info", "obj", "unknown"),
    [
        (registry.DEPLOYMENTS, _deployment(), []),
        (registry.DEPLOYMENTS, _deployment(foo=1), [".spec.template.spec.containers[0].foo"]),
        (registry.DEPLOYMENTS, {**_deployment(), "extra": True, "Spec": {}}, [".extra", ".Spec"]),
        (registry.SERVICES,
         {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "bogus": None},
          "spec": {"ports": [{"port": 80}, {"port": 81, "targetport": 8080}], "selector": {"any-key": "v"}}},
         [".metadata.bogus", ".spec.ports[1].targetport"]),
        (registry.ENDPOINT_SLICES,
         {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "s"},
          "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True,
                                                                                             "up": True}}]},
         [".endpoints[0].conditions.up"]),
        (registry.CONFIG_MAPS,
         {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "whatever": 1}, [".whatever"]),
    ],
    ids=["clean", "container-field", "top-level-and-case", "service", "slice", "opaque-pruned-too"],
)
def test_prune(info: registry.ResourceInfo, obj: dict[str, Any], unknown: list[str]) -> None:
    before = repr(obj)
    pruned, paths = schema.prune(info, obj)
    assert paths == unknown
    assert schema.unknown_fields(info, obj) == unknown
    assert repr(obj) == before  # input untouched
    assert schema.prune(info, pruned)[1] == []
    if not info.opaque:
        assert schema.prune(info, pruned)[0] == pruned


def test_prune_keeps_known_values() -> None:
    pruned, _ = schema.prune(registry.DEPLOYMENTS, _deployment(foo=1, ports=[{"containerPort": 80}]))
    assert pruned["spec"]["template"]["spec"]["containers"] == [
        {"name": "app", "image": "nginx", "ports": [{"containerPort": 80}]}
    ]
    assert pruned["metadata"]["labels"] == {"app": "web"}


def test_strict_decoding_message() -> None:
    msg = schema.strict_decoding_message([".spec.foo", ".spec.template.spec.containers[0].bar"])
    assert msg == ('strict decoding error: unknown field "spec.foo", '
                   'unknown field "spec.template.spec.containers[0].bar"')


def test_scale_definition_by_kind() -> None:
    name = schema.definition_name("autoscaling/v1", "Scale")
    assert name == "io.k8s.api.autoscaling.v1.Scale"
    _, paths = schema.prune_as(name, {"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": 3,
                                                                                               "x": 1}})
    assert paths == [".spec.x"]


def _fixture_docs() -> list[dict[str, Any]]:
    import pathlib

    import yaml

    here = pathlib.Path(__file__).resolve()
    for base in (here.parents[1] / "fixtures", here.parents[2] / "shared" / "fixtures",
                 pathlib.Path("/work/shared/fixtures")):
        d = base / "manifests"
        if d.is_dir():
            return [doc for f in sorted(d.glob("*.yaml")) for doc in yaml.safe_load_all(f.read_text()) if doc]
    return []


@pytest.mark.parametrize("doc", _fixture_docs(), ids=lambda d: f"{d['kind']}-{d['metadata']['name']}")
def test_fixture_manifests_have_no_unknown_fields(doc: dict[str, Any]) -> None:
    info = registry.by_kind(doc["apiVersion"], doc["kind"])
    assert info is not None
    assert schema.unknown_fields(info, doc) == []


@pytest.mark.parametrize(
    ("info", "obj", "errors"),
    [
        (registry.DEPLOYMENTS, _deployment(), []),
        (registry.DEPLOYMENTS, {**_deployment(), "spec": {**_deployment()["spec"], "replicas": "2"}},
         ["json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"]),
        (registry.DEPLOYMENTS, _deployment(ports=[{"containerPort": "80"}]),
         ["json: cannot unmarshal string into Go struct field "
          "ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"]),
        (registry.DEPLOYMENTS, _deployment(resources={"limits": {"cpu": "lots", "memory": 1}}),
         ["quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"]),
        (registry.SERVICES, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "labels": {"a": 1}},
                             "spec": {"ports": [{"port": 80, "targetPort": True}], "selector": "app=web"}},
         ["json: cannot unmarshal number 1 into Go struct field ObjectMeta.metadata.labels of type string",
          "json: cannot unmarshal bool into Go struct field ServicePort.spec.ports.targetPort of type "
          "intstr.IntOrString",
          "json: cannot unmarshal string into Go struct field ServiceSpec.spec.selector of type map[string]string"]),
        (registry.PODS, {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": {"name": "c"},
                                                                     "terminationGracePeriodSeconds": 1.5}},
         ["json: cannot unmarshal object into Go struct field PodSpec.spec.containers of type []v1.Container",
          "json: cannot unmarshal number 1.5 into Go struct field PodSpec.spec.terminationGracePeriodSeconds of "
          "type int64"]),
        (registry.CONFIG_MAPS, {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": 1}},
         ["json: cannot unmarshal number 1 into Go struct field ConfigMap.data of type string"]),
    ],
    ids=["clean", "replicas-string", "port-string", "bad-quantity", "service", "pod", "opaque-checked-too"],
)
def test_type_errors(info: registry.ResourceInfo, obj: dict[str, Any], errors: list[str]) -> None:
    assert schema.type_errors(info, obj) == errors


def test_decode_error_message() -> None:
    assert schema.decode_error_message(registry.DEPLOYMENTS, "json: x") == (
        'Deployment in version "v1" cannot be handled as a Deployment: json: x')


def test_data_file_is_what_the_generator_writes() -> None:
    """schema.json is generated; a hand edit (or a forgotten regeneration) shows up here."""
    import importlib.util
    import pathlib

    kubernetes = pytest.importorskip("kubernetes")
    data = schema.data()
    if data["source"] != f"kubernetes Python client {kubernetes.__version__}":
        pytest.skip(f"schema.json was generated from {data['source']}")
    script = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "gen_schema.py"
    spec = importlib.util.spec_from_file_location("gen_schema", script)
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.build() == data
