"""ConfigMap and Secret rules (keys, size, immutability, Secret types) and the base64 check of
`[]byte` fields, as Kubernetes 1.32 reports them. Pure: values in, causes out."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from sliceplane.api import registry, schema, validation

KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
           "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")


def cm(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}, **fields}


def secret(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}, **fields}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def texts(causes: list[Any]) -> list[str]:
    return [f"{c.field}: {c.message}" if c.field else c.message for c in causes]


@pytest.mark.parametrize(("info", "obj", "old", "want"), [
    (registry.CONFIG_MAPS, cm(data={"a.b-c_D": "x"}, binaryData={"bin": b64("y")}), None, []),
    (registry.CONFIG_MAPS, cm(data={"a b": "x"}), None, [f'data[a b]: Invalid value: "a b": {KEY_MSG}']),
    (registry.CONFIG_MAPS, cm(data={"..x": "x"}), None, ['data[..x]: Invalid value: "..x": must not start with \'..\'']),
    (registry.CONFIG_MAPS, cm(data={".": "x"}), None, ['data[.]: Invalid value: ".": must not be \'.\'']),
    (registry.CONFIG_MAPS, cm(data={"k" * 254: "x"}), None,
     [f'data[{"k" * 254}]: Invalid value: "{"k" * 254}": must be no more than 253 characters']),
    (registry.CONFIG_MAPS, cm(binaryData={"bad/key": b64("x")}), None,
     [f'binaryData[bad/key]: Invalid value: "bad/key": {KEY_MSG}']),
    (registry.CONFIG_MAPS, cm(data={"k": "x"}, binaryData={"k": b64("x")}), None,
     ['data[k]: Invalid value: "k": duplicate of key present in binaryData',
      'binaryData[k]: Invalid value: "k": duplicate of key present in data']),
    (registry.CONFIG_MAPS, cm(data={"a": "x" * (1024 * 1024)}), None, []),
    (registry.CONFIG_MAPS, cm(data={"a": "x" * (1024 * 1024), "b": "y"}), None,
     ["[]: Too long: may not be more than 1048576 bytes"]),
    (registry.CONFIG_MAPS, cm(data={"a": "x" * 1024 * 1023}, binaryData={"b": b64("y" * 1025)}), None,
     ["[]: Too long: may not be more than 1048576 bytes"]),
    (registry.CONFIG_MAPS, cm(immutable=True, data={"a": "2"}), cm(immutable=True, data={"a": "1"}),
     ["data: Forbidden: field is immutable when `immutable` is set"]),
    (registry.CONFIG_MAPS, cm(data={"a": "1"}), cm(immutable=True, data={"a": "1"}),
     ["immutable: Forbidden: field is immutable when `immutable` is set"]),
    (registry.CONFIG_MAPS, cm(immutable=True, data={"a": "1"}), cm(data={"a": "0"}), []),
    (registry.SECRETS, secret(data={"ok-key": b64("x")}), None, []),
    (registry.SECRETS, secret(data={"a:b": b64("x")}), None, [f'data[a:b]: Invalid value: "a:b": {KEY_MSG}']),
    (registry.SECRETS, secret(data={"a": b64("x" * (1024 * 1024 + 1))}), None,
     ["data: Too long: may not be more than 1048576 bytes"]),
    (registry.SECRETS, secret(type="kubernetes.io/tls", data={"tls.crt": b64("c")}), None,
     ["data[tls.key]: Required value"]),
    (registry.SECRETS, secret(type="kubernetes.io/basic-auth", data={}), None,
     ["data[username]: Required value", "data[password]: Required value"]),
    (registry.SECRETS, secret(type="kubernetes.io/service-account-token"), None,
     ["metadata.annotations[kubernetes.io/service-account.name]: Required value"]),
    (registry.SECRETS, secret(type="Other", data={}), secret(data={}),
     ['type: Invalid value: "Other": field is immutable']),
    (registry.SECRETS, secret(immutable=True, data={"a": b64("2")}), secret(immutable=True, data={"a": b64("1")}),
     ["data: Forbidden: field is immutable when `immutable` is set"]),
], ids=["cm-valid", "cm-space-in-key", "cm-dotdot-prefix", "cm-dot", "cm-key-too-long", "cm-binary-key",
        "cm-key-in-both", "cm-exactly-1MiB", "cm-over-1MiB", "cm-binary-counts-decoded", "cm-immutable-data",
        "cm-immutable-unset", "cm-made-immutable", "secret-valid", "secret-key", "secret-over-1MiB",
        "secret-tls-key-missing", "secret-basic-auth-empty", "secret-sa-token-annotation", "secret-type-changed",
        "secret-immutable-data"])
def test_config_map_and_secret_rules(info: registry.ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None,
                                     want: list[str]) -> None:
    assert texts(validation.validate(info, obj, old)) == want


@pytest.mark.parametrize(("text", "error"), [
    ("", ""),
    ("YQ==", ""),
    ("YWI=", ""),
    ("YWJj", ""),
    ("YWJj\nZA==\n", ""),
    ("not base64", "illegal base64 data at input byte 3"),
    ("YWJjZ", "illegal base64 data at input byte 4"),
    ("YQ=", "illegal base64 data at input byte 3"),
    ("YQ=x", "illegal base64 data at input byte 2"),
    ("=YQ=", "illegal base64 data at input byte 0"),
    ("YQ==YQ==", "illegal base64 data at input byte 4"),
], ids=["empty", "two-pad", "one-pad", "no-pad", "newlines", "space", "short-quantum", "half-padding",
        "garbage-after-pad", "leading-pad", "data-after-padding"])
def test_base64_error(text: str, error: str) -> None:
    assert schema.base64_error(text) == error


@pytest.mark.parametrize(("info", "obj", "errors"), [
    (registry.CONFIG_MAPS, cm(data="str"),
     ["json: cannot unmarshal string into Go struct field ConfigMap.data of type map[string]string"]),
    (registry.CONFIG_MAPS, cm(binaryData={"b": "%%"}), ["illegal base64 data at input byte 0"]),
    (registry.SECRETS, secret(data={"a": "not base64"}), ["illegal base64 data at input byte 3"]),
    (registry.SECRETS, secret(stringData={"a": 1}),
     ["json: cannot unmarshal number 1 into Go struct field Secret.stringData of type string"]),
    (registry.CONFIG_MAPS, cm(metadata={"name": 5}),
     ["json: cannot unmarshal number 5 into Go struct field ObjectMeta.metadata.name of type string"]),
], ids=["cm-data-string", "cm-binary-not-base64", "secret-not-base64", "secret-stringdata-number", "name-number"])
def test_opaque_kinds_are_type_checked(info: registry.ResourceInfo, obj: dict[str, Any], errors: list[str]) -> None:
    assert schema.type_errors(info, obj) == errors


@pytest.mark.parametrize(("info", "obj", "unknown"), [
    (registry.CONFIG_MAPS, cm(data={}, extra=1), [".extra"]),
    (registry.SECRETS, secret(datta={}), [".datta"]),
    (registry.SERVICE_ACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a"},
                                 "secret": []}, [".secret"]),
    (registry.EVENTS, {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "involvedObject": {},
                       "msg": "x"}, [".msg"]),
], ids=["configmap", "secret", "serviceaccount", "event"])
def test_opaque_kinds_have_their_fields(info: registry.ResourceInfo, obj: dict[str, Any], unknown: list[str]) -> None:
    assert schema.unknown_fields(info, obj) == unknown


def service(ports: list[dict[str, Any]], typ: str = "NodePort") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "default"},
            "spec": {"type": typ, "selector": {"app": "a"}, "ports": ports, "sessionAffinity": "None",
                     "externalTrafficPolicy": "Cluster"}}


def dup_port(protocol: str, port: int) -> str:
    return (f'core.ServicePort{{Name:"", Protocol:"{protocol}", AppProtocol:(*string)(nil), Port:{port}, '
            'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}')


@pytest.mark.parametrize(("ports", "want"), [
    ([{"name": "a", "protocol": "TCP", "port": 80}, {"name": "b", "protocol": "UDP", "port": 80}], []),
    ([{"name": "a", "protocol": "TCP", "port": 80}, {"name": "b", "protocol": "TCP", "port": 80}],
     [f"spec.ports[1]: Duplicate value: {dup_port('TCP', 80)}"]),
    ([{"name": "a", "protocol": "TCP", "port": 80, "nodePort": 30080},
      {"name": "b", "protocol": "TCP", "port": 81, "nodePort": 30080}],
     ["spec.ports[1].nodePort: Duplicate value: 30080"]),
    ([{"name": "a", "protocol": "TCP", "port": 53, "nodePort": 30053},
      {"name": "b", "protocol": "UDP", "port": 53, "nodePort": 30053}], []),
    ([{"name": "a", "protocol": "TCP", "port": 80, "nodePort": 30080},
      {"name": "b", "protocol": "TCP", "port": 80, "nodePort": 30080}],
     ["spec.ports[1].nodePort: Duplicate value: 30080", f"spec.ports[1]: Duplicate value: {dup_port('TCP', 80)}"]),
], ids=["same-port-other-protocol", "same-port-and-protocol", "same-node-port", "node-port-shared-by-tcp-udp",
        "both-repeated"])
def test_service_port_duplicates(ports: list[dict[str, Any]], want: list[str]) -> None:
    assert texts(validation.validate(registry.SERVICES, service(ports))) == want
