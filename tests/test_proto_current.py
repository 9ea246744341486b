"""The checked-in generated code is exactly what the pinned generator makes from proto/."""

from __future__ import annotations

from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]


def test_generated_code_matches_proto_sources(tmp_path):
    sources = sorted(str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    code = protoc.main(
        [
            "protoc",
            f"-I{ROOT / 'proto'}",
            f"-I{include}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            *sources,
        ]
    )
    assert code == 0
    generated = sorted(tmp_path.rglob("*_pb2.py*"))
    assert generated, "protoc generated nothing"
    for path in generated:
        committed = ROOT / path.relative_to(tmp_path)
        assert committed.read_text() == path.read_text(), f"{committed} is stale: run make proto"
