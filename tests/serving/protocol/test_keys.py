"""The cache key: equal for requests that must share an answer, different for all others."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import orjson
import pytest

from memoserve_serving.cache.keys import DIGEST_SIZE, RequestKeys, request_digest
from memoserve_serving.cache.slots import hash_tag, key_slot
from memoserve_serving.protocol.request import decode_request
from memoserve_serving.protocol.types import InferenceRequest, Tensor
from tests.serving.protocol.test_request import VALUES, binary_request, raw_bytes

DIGEST = "0123456789abcdef" * 4


def key_of(body: bytes | dict[str, Any], json_length: int | None = None) -> bytes:
    raw = orjson.dumps(body) if isinstance(body, dict) else body
    return RequestKeys("default/iris", DIGEST)(decode_request(raw, json_length))


def base(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": "a",
        "inputs": [
            {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]},
            {"name": "w", "shape": [2], "datatype": "BYTES", "data": ["ab", "c"]},
        ],
        "outputs": [{"name": "label"}, {"name": "probabilities"}],
        "parameters": {"top_k": 2, "mode": "fast"},
    }
    document.update(changes)
    return document


def with_input(index: int, **changes: Any) -> dict[str, Any]:
    document = base()
    document["inputs"][index] = {**document["inputs"][index], **changes}
    return document


BASE_KEY = key_of(base())

SAME = {
    "spacing": json.dumps(base(), indent=3).encode(),
    "key order": json.dumps(dict(reversed(base().items()))).encode(),
    "tensor key order": orjson.dumps(
        base(inputs=[dict(reversed(t.items())) for t in base()["inputs"]])
    ),
    "input order": base(inputs=base()["inputs"][::-1]),
    "output order": base(outputs=base()["outputs"][::-1]),
    "nested data": with_input(0, data=[[5.1, 3.5, 1.4, 0.2]]),
    "parameter order": base(parameters={"mode": "fast", "top_k": 2}),
    "id": base(id="b"),
    "no id": {k: v for k, v in base().items() if k != "id"},
    "binary_data_output": base(parameters={"top_k": 2, "mode": "fast", "binary_data_output": True}),
    "output binary_data": base(
        outputs=[{"name": "label", "parameters": {"binary_data": True}}, {"name": "probabilities"}]
    ),
    "empty parameters": with_input(0, parameters={}),
    # Outputs named only to pick from the answer: the whole answer is cached, they are projected.
    "fewer outputs": base(outputs=[{"name": "label"}]),
    "all outputs": base(outputs=[]),
    "no outputs field": {k: v for k, v in base().items() if k != "outputs"},
}


@pytest.mark.parametrize("body", SAME.values(), ids=SAME.keys())
def test_same_answer_same_key(body: bytes | dict[str, Any]) -> None:
    assert key_of(body) == BASE_KEY


def test_one_and_one_point_zero_are_the_same_float() -> None:
    ints = with_input(0, data=[1, 2, 3, 4])
    floats = with_input(0, data=[1.0, 2.0, 3.0, 4.0])
    assert key_of(ints) == key_of(floats)


@pytest.mark.parametrize("datatype", sorted(VALUES))
def test_json_and_binary_encodings_share_a_key(datatype: str) -> None:
    values = VALUES[datatype]
    tensor = {"name": "t", "shape": [2, 2], "datatype": datatype}
    as_json = {"inputs": [{**tensor, "data": values}]}
    raw = raw_bytes(datatype, values)
    as_binary = {"inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}]}
    assert key_of(as_json) == key_of(*binary_request(as_binary, [raw]))


DIFFERENT = {
    "value": with_input(0, data=[5.1, 3.5, 1.4, 0.3]),
    "negative zero": with_input(0, data=[5.1, 3.5, 1.4, -0.0]),
    "datatype": with_input(0, datatype="FP64"),
    "shape": with_input(0, shape=[4]),
    "shape 2x2": with_input(0, shape=[2, 2]),
    "input name": with_input(0, name="y"),
    "bytes split": with_input(1, data=["a", "bc"]),
    "request parameter": base(parameters={"top_k": 3, "mode": "fast"}),
    "request parameter 1.0": base(parameters={"top_k": 2.0, "mode": "fast"}),
    "input parameter": with_input(0, parameters={"scale": 2}),
    "output parameter": base(
        outputs=[{"name": "label", "parameters": {"classification": 2}}, {"name": "probabilities"}]
    ),
    "swapped values": base(
        inputs=[
            {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [3.5, 5.1, 1.4, 0.2]},
            base()["inputs"][1],
        ]
    ),
}


@pytest.mark.parametrize("body", DIFFERENT.values(), ids=DIFFERENT.keys())
def test_other_answer_other_key(body: dict[str, Any]) -> None:
    assert key_of(body) != BASE_KEY


def test_all_the_different_requests_differ_from_each_other() -> None:
    keys = {key_of(body) for body in DIFFERENT.values()}
    assert len(keys) == len(DIFFERENT)


def test_a_parameter_moved_between_levels_changes_the_key() -> None:
    tensor = {"name": "x", "shape": [1], "datatype": "INT8", "data": [1]}
    on_request = {"inputs": [tensor], "outputs": [{"name": "y"}], "parameters": {"k": 1}}
    on_input = {"inputs": [{**tensor, "parameters": {"k": 1}}], "outputs": [{"name": "y"}]}
    on_output = {"inputs": [tensor], "outputs": [{"name": "y", "parameters": {"k": 1}}]}
    assert len({key_of(on_request), key_of(on_input), key_of(on_output)}) == 3


def test_field_boundaries_cannot_shift() -> None:
    one = {"inputs": [{"name": "ab", "shape": [1], "datatype": "BYTES", "data": ["c"]}]}
    two = {"inputs": [{"name": "a", "shape": [1], "datatype": "BYTES", "data": ["bc"]}]}
    assert key_of(one) != key_of(two)


def test_arrays_built_by_hand_hash_as_their_datatype_in_row_major_order() -> None:
    decoded = decode_request(orjson.dumps(with_input(0, shape=[2, 2], data=[[1, 2], [3, 4]])))
    fortran_float64 = np.asfortranarray(np.array([[1, 2], [3, 4]], dtype=np.float64))
    by_hand = InferenceRequest(
        "other-id",
        (
            Tensor("x", "FP32", (2, 2), fortran_float64),
            Tensor("w", "BYTES", (2,), np.array(["ab", "c"])),
        ),
        decoded.outputs,
        decoded.parameters,
    )
    assert request_digest(by_hand) == request_digest(decoded)


def test_key_layout_and_what_it_depends_on() -> None:
    request = decode_request(orjson.dumps(base()))
    digest = request_digest(request)
    assert len(digest) == DIGEST_SIZE
    key = RequestKeys("default/iris", DIGEST)(request)
    assert key == b"memoserve:v3:default/iris:0123456789abcdef:{" + digest.hex().encode() + b"}"
    assert RequestKeys("default/other", DIGEST)(request) != key
    assert RequestKeys("default/iris", "f" + DIGEST[1:])(request) != key


def test_model_digest_must_be_long_enough_to_keep_keys_apart() -> None:
    request = decode_request(orjson.dumps(base()))
    with pytest.raises(ValueError, match="16"):
        RequestKeys("ns", "abc")(request)
    with pytest.raises(ValueError, match="16"):
        RequestKeys("ns", "sha256:0123456789abcdef")(request)


@pytest.mark.parametrize("namespace", ["ns{a}", "ns{", "}ns", "a{b"])
def test_a_brace_before_the_hash_tag_is_refused(namespace: str) -> None:
    # Redis Cluster hashes from the first "{": a brace in the namespace would move the tag off
    # the request digest and put all of the namespace's keys in one slot.
    with pytest.raises(ValueError, match="must not contain"):
        RequestKeys(namespace, DIGEST)
    with pytest.raises(ValueError, match="must not contain"):
        RequestKeys("ns", "0123456789ab{}ef")


def test_the_request_digest_is_the_hash_tag_shared_with_its_lock() -> None:
    key = RequestKeys("ml/iris", DIGEST)(decode_request(orjson.dumps(base())))
    assert hash_tag(key) == request_digest(decode_request(orjson.dumps(base()))).hex().encode()
    assert key_slot(b"lock:" + key) == key_slot(key)


def test_scheduling_hints_do_not_split_the_cache() -> None:
    plain = b'{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}'
    hinted = (
        b'{"parameters":{"priority":3,"timeout":1000},'
        b'"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}'
    )
    other = (
        b'{"parameters":{"temperature":0.5},'
        b'"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}'
    )
    digest = "0" * 64
    key = RequestKeys("ns/a", digest)(decode_request(plain))
    assert RequestKeys("ns/a", digest)(decode_request(hinted)) == key
    assert RequestKeys("ns/a", digest)(decode_request(other)) != key


def test_the_canonical_request_is_the_documented_encoding() -> None:
    """Spelled out independently: a change of these bytes needs a new blake2b personalization."""
    request = decode_request(orjson.dumps(base()))
    head = orjson.dumps(
        [
            [["w", "BYTES", [2], {}, 11], ["x", "FP32", [1, 4], {}, 16]],
            [],  # outputs named only to select are not part of the question
            {"mode": "fast", "top_k": 2},
        ]
    )
    data = b"\x02\x00\x00\x00ab\x01\x00\x00\x00c" + np.array([5.1, 3.5, 1.4, 0.2], "<f4").tobytes()
    canonical = len(head).to_bytes(8, "little") + head + data
    want = hashlib.blake2b(canonical, digest_size=DIGEST_SIZE, person=b"memoserve-req-v2")
    assert request_digest(request) == want.digest()
