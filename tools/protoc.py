"""Generates the Python gRPC stubs from proto/ into a target directory.

`python -m tools.protoc prism/v1` regenerates the checked-in stubs; tests call
`generate(tmpdir)` to check that the checked-in ones are current.
"""

import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PROTO_FILES = sorted(PROTO_ROOT.glob("prism/v1/*.proto"))
WELL_KNOWN_TYPES = Path(grpc_tools.__file__).parent / "_proto"


def generate(out_dir: Path) -> None:
    """Writes *_pb2.py, *_pb2.pyi and *_pb2_grpc.py for every proto under out_dir/prism/v1."""
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{WELL_KNOWN_TYPES}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(path.relative_to(PROTO_ROOT)) for path in PROTO_FILES),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


if __name__ == "__main__":
    if sys.argv[1:] != ["prism/v1"]:
        raise SystemExit("usage: python -m tools.protoc prism/v1")
    generate(ROOT)
    print(f"generated stubs for {len(PROTO_FILES)} protos in prism/v1")
