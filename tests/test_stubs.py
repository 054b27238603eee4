"""The checked-in stubs must be what `make proto` generates from proto/ today."""

from pathlib import Path

from tools import protoc

STUBS = protoc.ROOT / "prism" / "v1"


def test_checked_in_stubs_match_the_protos(tmp_path: Path) -> None:
    protoc.generate(tmp_path)
    fresh = {path.name: path.read_bytes() for path in (tmp_path / "prism" / "v1").iterdir()}
    checked_in = {path.name: path.read_bytes() for path in STUBS.iterdir() if path.name in fresh}
    stale = sorted(name for name in fresh if checked_in.get(name) != fresh[name])
    assert not stale, f"stubs are stale, run `make proto`: {stale}"
