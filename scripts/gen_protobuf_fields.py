#!/usr/bin/env python3
"""Generate src/sliceplane/apiserver/data/protobuf.json: the protobuf field table of our kinds.

kubectl's typed clients (`kubectl create namespace|configmap|deployment ...`) send request
bodies as `application/vnd.kubernetes.protobuf`. To read them the server needs each message's
field numbers, names and types. Go binaries built from k8s.io/api register their gzipped
FileDescriptorProtos, so this script reads them out of a kubectl binary (no network, no
Kubernetes sources) and keeps only the messages reachable from the kinds we serve.

Needs the `protobuf` package (only here, not at run time):
`python scripts/gen_protobuf_fields.py [/path/to/kubectl]`.
"""

from __future__ import annotations

import glob
import json
import shutil
import sys
import zlib
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2

OUT = Path(__file__).resolve().parent.parent / "src" / "sliceplane" / "apiserver" / "data" / "protobuf.json"

ROOTS = [
    "k8s.io.api.core.v1.Namespace", "k8s.io.api.core.v1.Node", "k8s.io.api.core.v1.Pod",
    "k8s.io.api.core.v1.Service", "k8s.io.api.core.v1.Endpoints", "k8s.io.api.core.v1.ServiceAccount",
    "k8s.io.api.core.v1.ConfigMap", "k8s.io.api.core.v1.Secret", "k8s.io.api.core.v1.Event",
    "k8s.io.api.core.v1.Binding", "k8s.io.api.discovery.v1.EndpointSlice", "k8s.io.api.apps.v1.Deployment",
    "k8s.io.api.apps.v1.ReplicaSet", "k8s.io.api.coordination.v1.Lease", "k8s.io.api.autoscaling.v1.Scale",
    "k8s.io.api.policy.v1.Eviction", "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "k8s.io.apimachinery.pkg.runtime.Unknown",
]

_SCALARS = {
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string",
    descriptor_pb2.FieldDescriptorProto.TYPE_BYTES: "bytes",
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: "bool",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32: "int32",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64: "int64",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT32: "uint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT64: "uint64",
    descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE: "double",
    descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT: "float",
}


def find_kubectl() -> str:
    if len(sys.argv) > 1:
        return sys.argv[1]
    # The server speaks 1.32; prefer that kubectl's descriptors when the dispatcher bundles several.
    candidates = sorted(glob.glob("/usr/lib/google-cloud-sdk/bin/kubectl.1.32"))
    return candidates[-1] if candidates else (shutil.which("kubectl") or "kubectl")


def descriptors(binary: bytes) -> list[descriptor_pb2.FileDescriptorProto]:
    out: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    i = 0
    while (i := binary.find(b"\x1f\x8b\x08", i)) >= 0:
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(binary[i:i + 4_000_000])
            fd = descriptor_pb2.FileDescriptorProto()
            fd.ParseFromString(raw)
            if fd.name.startswith("k8s.io/") and fd.message_type:
                out.setdefault(fd.name, fd)
        except Exception:
            pass
        i += 3
    return list(out.values())


def collect(fds: list[descriptor_pb2.FileDescriptorProto]) -> dict[str, descriptor_pb2.DescriptorProto]:
    messages: dict[str, descriptor_pb2.DescriptorProto] = {}

    def walk(prefix: str, msg: descriptor_pb2.DescriptorProto) -> None:
        name = f"{prefix}.{msg.name}"
        messages[name] = msg
        for nested in msg.nested_type:
            walk(name, nested)

    for fd in fds:
        for m in fd.message_type:
            walk(fd.package, m)
    return messages


def field_type(f: descriptor_pb2.FieldDescriptorProto) -> str:
    if f.type in _SCALARS:
        return _SCALARS[f.type]
    return f.type_name.lstrip(".")


def main() -> None:
    path = find_kubectl()
    messages = collect(descriptors(Path(path).read_bytes()))
    table: dict[str, Any] = {}
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name in table:
            continue
        msg = messages[name]
        fields = []
        for f in msg.field:
            t = field_type(f)
            repeated = f.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
            entry = messages.get(t)
            if repeated and entry is not None and entry.options.map_entry:
                k, v = entry.field[0], entry.field[1]
                fields.append([f.number, f.name, [field_type(k), field_type(v)], "m"])
                for sub in (field_type(k), field_type(v)):
                    if sub in messages:
                        todo.append(sub)
                continue
            fields.append([f.number, f.name, t, "r" if repeated else ""])
            if t in messages:
                todo.append(t)
        table[name] = fields
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"source": Path(path).name, "messages": dict(sorted(table.items()))},
                              separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({len(table)} messages from {path})")


if __name__ == "__main__":
    main()
