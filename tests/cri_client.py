#!/usr/bin/env python3
"""A minimal CRI client for tests/containerd_cri.rs.

Kubernetes talks to containerd through the CRI gRPC API; Debian ships no
crictl, so this speaks it directly: python3-grpcio carries raw bytes, and
the few protobuf messages the test needs are encoded and decoded here by
hand (wire format: varint keys, varints, length-delimited fields), so no
generated code or .proto file is needed.

Usage: cri_client.py SOCKET COMMAND ARGS...
  version
  run-pod POD_JSON                 -> prints the sandbox id
  pod-status POD_ID                -> prints JSON {state, runtime_handler}
  create POD_ID POD_JSON CTR_JSON  -> prints the container id
  start ID
  status ID                        -> prints JSON {state, exit_code, ...}
  stop ID TIMEOUT | remove ID | stop-pod POD_ID | remove-pod POD_ID

POD_JSON: {"name", "uid", "namespace", "hostname", "log_directory",
"cgroup_parent"}; the pod shares the node's network (no CNI needed).
CTR_JSON: {"name", "image", "command": [...], "log_path", "pid": "POD"|
"CONTAINER"}.
A failed call exits 2 with the gRPC status on stderr.
"""

import json
import sys

import grpc

SERVICE = "/runtime.v1.RuntimeService/"

# NamespaceMode values.
POD, CONTAINER, NODE = 0, 1, 2


def varint(n):
    if n < 0:
        n += 1 << 64  # int64 negatives are ten-byte two's complement
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def field_int(number, value):
    if not value:
        return b""  # proto3 leaves defaults out
    return varint(number << 3) + varint(value)


def field_bytes(number, data):
    if isinstance(data, str):
        data = data.encode()
    return varint((number << 3) | 2) + varint(len(data)) + data


def field_str(number, text):
    return field_bytes(number, text) if text else b""


def field_map(number, entries):
    return b"".join(
        field_bytes(number, field_str(1, k) + field_str(2, v))
        for k, v in sorted(entries.items())
    )


def decode(data):
    """Fields of one message: number -> list of ints or bytes."""
    fields = {}
    i = 0

    def read_varint():
        nonlocal i
        shift = value = 0
        while True:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value

    while i < len(data):
        key = read_varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            value = read_varint()
        elif wire == 2:
            length = read_varint()
            value = data[i : i + length]
            i += length
        elif wire == 1:
            value = data[i : i + 8]
            i += 8
        elif wire == 5:
            value = data[i : i + 4]
            i += 4
        else:
            raise ValueError(f"wire type {wire} in field {number}")
        fields.setdefault(number, []).append(value)
    return fields


def first(fields, number, default):
    return fields.get(number, [default])[0]


def text(fields, number):
    return first(fields, number, b"").decode()


def int32(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def pod_config(pod):
    metadata = (
        field_str(1, pod["name"])
        + field_str(2, pod["uid"])
        + field_str(3, pod["namespace"])
    )
    # NamespaceOption: network shared with the node, so containerd calls
    # no CNI plugin; pid and ipc are the pod's own.
    namespaces = field_int(1, NODE) + field_int(2, POD) + field_int(3, POD)
    security = field_bytes(1, namespaces)  # LinuxSandboxSecurityContext
    linux = field_str(1, pod.get("cgroup_parent", "")) + field_bytes(2, security)
    return (
        field_bytes(1, metadata)
        + field_str(2, pod.get("hostname", ""))
        + field_str(3, pod["log_directory"])
        + field_map(6, {"test": "sunaba"})
        + field_bytes(8, linux)
    )


def container_config(ctr):
    metadata = field_str(1, ctr["name"])
    image = field_str(1, ctr["image"])
    pid = {"POD": POD, "CONTAINER": CONTAINER}[ctr.get("pid", "CONTAINER")]
    namespaces = field_int(1, NODE) + field_int(2, pid) + field_int(3, POD)
    security = field_bytes(3, namespaces)  # LinuxContainerSecurityContext
    linux = field_bytes(2, security)
    return (
        field_bytes(1, metadata)
        + field_bytes(2, image)
        + b"".join(field_str(3, c) for c in ctr["command"])
        + field_str(11, ctr["log_path"])
        + field_bytes(15, linux)
    )


def call(channel, method, request):
    rpc = channel.unary_unary(SERVICE + method)
    try:
        return decode(rpc(request, timeout=60))
    except grpc.RpcError as e:
        print(f"{method}: {e.code().name}: {e.details()}", file=sys.stderr)
        sys.exit(2)


def main(argv):
    socket, command, args = argv[1], argv[2], argv[3:]
    channel = grpc.insecure_channel("unix://" + socket)
    if command == "version":
        reply = call(channel, "Version", field_str(1, "v1"))
        print(json.dumps({"runtime_name": text(reply, 2), "api": text(reply, 4)}))
    elif command == "run-pod":
        pod = json.loads(args[0])
        request = field_bytes(1, pod_config(pod)) + field_str(2, pod["handler"])
        print(text(call(channel, "RunPodSandbox", request), 1))
    elif command == "pod-status":
        reply = call(channel, "PodSandboxStatus", field_str(1, args[0]))
        status = decode(first(reply, 1, b""))
        state = ["SANDBOX_READY", "SANDBOX_NOTREADY"][first(status, 3, 0)]
        print(json.dumps({"state": state, "runtime_handler": text(status, 9)}))
    elif command == "create":
        pod, ctr = json.loads(args[1]), json.loads(args[2])
        request = (
            field_str(1, args[0])
            + field_bytes(2, container_config(ctr))
            + field_bytes(3, pod_config(pod))
        )
        print(text(call(channel, "CreateContainer", request), 1))
    elif command == "start":
        call(channel, "StartContainer", field_str(1, args[0]))
    elif command == "status":
        reply = call(channel, "ContainerStatus", field_str(1, args[0]))
        status = decode(first(reply, 1, b""))
        states = ["CONTAINER_CREATED", "CONTAINER_RUNNING", "CONTAINER_EXITED"]
        state = first(status, 3, 0)
        print(
            json.dumps(
                {
                    "state": states[state] if state < 3 else "CONTAINER_UNKNOWN",
                    "exit_code": int32(first(status, 7, 0)),
                    "reason": text(status, 10),
                    "message": text(status, 11),
                    "log_path": text(status, 15),
                }
            )
        )
    elif command == "stop":
        call(channel, "StopContainer", field_str(1, args[0]) + field_int(2, int(args[1])))
    elif command == "remove":
        call(channel, "RemoveContainer", field_str(1, args[0]))
    elif command == "stop-pod":
        call(channel, "StopPodSandbox", field_str(1, args[0]))
    elif command == "remove-pod":
        call(channel, "RemovePodSandbox", field_str(1, args[0]))
    else:
        print(f"unknown command {command}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
