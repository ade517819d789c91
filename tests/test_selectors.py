"""Label and field selectors: grammar, canonical text, matching and Kubernetes' error text."""

from __future__ import annotations

import pytest

from sliceplane.api.errors import StatusError
from sliceplane.api.registry import (
    DEPLOYMENTS,
    ENDPOINT_SLICES,
    EVENTS,
    NAMESPACES,
    NODES,
    PODS,
    REPLICA_SETS,
    SECRETS,
    SERVICES,
)
from sliceplane.api.selectors import (
    label_selector_from_spec,
    parse_field_selector,
    parse_label_selector,
    selector_from_set,
)

LABELS = {"app": "web", "tier": "frontend", "version": "3", "example.com/team": "a-b"}


@pytest.mark.parametrize(
    "text, canonical, matches",
    [
        ("", "", True),
        ("app=web", "app=web", True),
        ("app==web", "app==web", True),
        ("app = web", "app=web", True),
        ("app!=web", "app!=web", False),
        ("app!=db", "app!=db", True),
        ("missing!=x", "missing!=x", True),
        ("app in (web,db)", "app in (db,web)", True),
        ("app in (db)", "app in (db)", False),
        ("app notin (db, cache)", "app notin (cache,db)", True),
        ("missing notin (a)", "missing notin (a)", True),
        ("app", "app", True),
        ("!app", "!app", False),
        ("!missing", "!missing", True),
        ("tier=frontend,app=web", "app=web,tier=frontend", True),
        ("example.com/team=a-b", "example.com/team=a-b", True),
        ("version>2", "version>2", True),
        ("version<3", "version<3", False),
        ("app in (web,web)", "app in (web)", True),
        ("app=", "app=", False),
        ("missing=", "missing=", False),
        ("app in (web,)", "app in (,web)", True),
        ("app in (web,,)", "app in (,web)", True),
        ("app in (,,db)", "app in (,db)", False),
        ("app in (in,notin)", "app in (in,notin)", False),
        ("in in (in)", "in in (in)", False),
        ("  app  ,  tier  ", "app,tier", True),
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else None,
)
def test_parse_and_match(text: str, canonical: str, matches: bool) -> None:
    sel = parse_label_selector(text)
    assert str(sel) == canonical
    assert sel.matches(LABELS) is matches
    assert str(parse_label_selector(str(sel))) == canonical  # canonical text parses to itself


@pytest.mark.parametrize(
    "text, message",
    [
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("a ((", "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("a>x", "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, "
                "the value must be an integer"),
        ("a/b/c=d", "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist "
                    "of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
                    "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' "
                    "(e.g. 'example.com/MyName')"),
        ("a$=b", "unable to parse requirement: <nil>: Invalid value: \"a$\": name part must consist of "
                 "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
                 "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                 "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
        ("a=-b", "unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be an "
                 "empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                 "with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
                 "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
        ("a=" + "x" * 64, "unable to parse requirement: values[0][a]: Invalid value: \"" + "x" * 64
         + "\": must be no more than 63 characters"),
        ("a=>b", "unable to parse requirement: found '>', expected: identifier"),
    ],
    ids=lambda v: v[:30] if isinstance(v, str) else None,
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(StatusError) as err:
        parse_label_selector(text)
    assert err.value.code == 400
    assert err.value.reason == "BadRequest"
    assert err.value.message == message


@pytest.mark.parametrize(
    "spec, canonical, matches",
    [
        ({}, "", True),
        ({"matchLabels": {"app": "web"}}, "app=web", True),
        ({"matchLabels": {"app": "db"}}, "app=db", False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["frontend", "backend"]}]},
         "tier in (backend,frontend)", True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["frontend"]}]},
         "tier notin (frontend)", False),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, "app", True),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, "!app", False),
        ({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "gone", "operator": "DoesNotExist"}]},
         "app=web,!gone", True),
    ],
    ids=["empty", "labels", "labels-miss", "in", "notin", "exists", "doesnotexist", "both"],
)
def test_from_spec(spec: dict, canonical: str, matches: bool) -> None:
    sel = label_selector_from_spec(spec)
    assert str(sel) == canonical
    assert sel.matches(LABELS) is matches


def test_none_spec_matches_nothing() -> None:
    sel = label_selector_from_spec(None)
    assert not sel.matches(LABELS)
    assert not sel.matches({})
    assert not sel.empty
    assert label_selector_from_spec({}).empty


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
         '"Gt" is not a valid label selector operator'),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
         "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"),
        ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
         "values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist"),
        ({"matchLabels": {"a": "b c"}},
         "values[0][a]: Invalid value: \"b c\": a valid label must be an empty string or consist of alphanumeric "
         "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
         "'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
    ],
    ids=["bad-operator", "in-empty", "exists-values", "bad-value"],
)
def test_from_spec_errors(spec: dict, message: str) -> None:
    with pytest.raises(StatusError) as err:
        label_selector_from_spec(spec)
    assert err.value.code == 400
    assert err.value.message == message


def test_selector_from_set() -> None:
    sel = selector_from_set({"tier": "frontend", "app": "web"})
    assert str(sel) == "app=web,tier=frontend"
    assert sel.matches(LABELS)
    assert not sel.matches({"app": "web"})
    assert selector_from_set({}).empty
    assert selector_from_set(None).matches({})


POD = {
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "node-1", "restartPolicy": "Always", "schedulerName": "default-scheduler"},
    "status": {"phase": "Running", "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}]},
}


@pytest.mark.parametrize(
    "info, text, obj, matches, canonical",
    [
        (PODS, "metadata.name=web-1", POD, True, "metadata.name=web-1"),
        (PODS, "metadata.name==web-2", POD, False, "metadata.name=web-2"),
        (PODS, "spec.nodeName=node-1,status.phase!=Pending", POD, True,
         "spec.nodeName=node-1,status.phase!=Pending"),
        (PODS, "spec.nodeName=", POD, False, "spec.nodeName="),
        (PODS, "spec.nodeName=", {"metadata": {"name": "p"}}, True, "spec.nodeName="),
        (PODS, "spec.host=node-1", POD, True, "spec.nodeName=node-1"),
        (PODS, "status.podIP=10.244.1.5", POD, True, "status.podIP=10.244.1.5"),
        (PODS, "metadata.namespace=default", POD, True, "metadata.namespace=default"),
        (NODES, "spec.unschedulable=false", {"metadata": {"name": "n"}, "spec": {}}, True,
         "spec.unschedulable=false"),
        (NODES, "spec.unschedulable=true", {"metadata": {"name": "n"}, "spec": {"unschedulable": True}}, True,
         "spec.unschedulable=true"),
        (NAMESPACES, "status.phase=Active", {"metadata": {"name": "n"}, "status": {"phase": "Active"}}, True,
         "status.phase=Active"),
        (SERVICES, "spec.type=ClusterIP", {"metadata": {"name": "s"}, "spec": {"type": "ClusterIP"}}, True,
         "spec.type=ClusterIP"),
        (REPLICA_SETS, "status.replicas=0", {"metadata": {"name": "r"}}, True, "status.replicas=0"),
        (ENDPOINT_SLICES, "metadata.name=a\\,b", {"metadata": {"name": "a,b"}}, True, "metadata.name=a\\,b"),
        (DEPLOYMENTS, "", {"metadata": {"name": "d"}}, True, ""),
        (EVENTS, "source=kubelet,involvedObject.kind=Pod",
         {"metadata": {"name": "e"}, "source": {"component": "kubelet", "host": "n1"},
          "involvedObject": {"kind": "Pod", "name": "p"}}, True, "involvedObject.kind=Pod,source=kubelet"),
        (SECRETS, "type=kubernetes.io/tls", {"metadata": {"name": "s"}, "type": "kubernetes.io/tls"}, True,
         "type=kubernetes.io/tls"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_field_selector(info, text: str, obj: dict, matches: bool, canonical: str) -> None:
    sel = parse_field_selector(text, info)
    assert sel.matches(obj) is matches
    assert str(sel) == canonical


@pytest.mark.parametrize(
    "info, text, message",
    [
        (PODS, "spec.foo=x", "field label not supported: spec.foo"),
        (NODES, "metadata.namespace=x", "field label not supported: metadata.namespace"),
        (SERVICES, "spec.selector=x", "field label not supported: spec.selector"),
        (DEPLOYMENTS, "spec.replicas=1",
         '"spec.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"'),
        (ENDPOINT_SLICES, "addressType=IPv4",
         '"addressType" is not a known field selector: only "metadata.name", "metadata.namespace"'),
        (PODS, "nonsense", "invalid selector: 'nonsense'; can't understand 'nonsense'"),
        (PODS, "metadata.name=a=b", "invalid field selector: unescaped character in value: ="),
        (PODS, "metadata.name=a\\x", "invalid field selector: invalid escape sequence: \\x"),
    ],
    ids=["pod-field", "node-namespace", "svc-selector", "deploy-default", "slice-default", "no-operator",
         "unescaped", "bad-escape"],
)
def test_field_selector_errors(info, text: str, message: str) -> None:
    with pytest.raises(StatusError) as err:
        parse_field_selector(text, info)
    assert err.value.code == 400
    assert err.value.reason == "BadRequest"
    assert err.value.message == message
