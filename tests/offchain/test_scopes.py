from pathlib import Path

from codexfield import scopes

ROOT = Path(__file__).resolve().parents[2]


def test_generated_vyper_scopes_module_matches_python_table():
    assert (ROOT / "contracts/modules/scopes.vy").read_text() == scopes.vyper_module()


def test_scope_bits_are_unique_and_grouped():
    bits = [s.bit for s in scopes.SCOPES]
    assert len(bits) == len(set(bits))
    for s in scopes.SCOPES:
        lo, hi = {"right": (0, 15), "requirement": (16, 31), "scenario": (32, 63)}[s.group]
        assert lo <= s.bit <= hi, s


def test_names_round_trip_through_mask():
    names = ["research", "derivatives", "medical"]
    assert scopes.names_of(scopes.mask_of(names)) == names
