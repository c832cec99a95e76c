from pathlib import Path

from codexfield import reasons
from codexfield.constants import Reject

ROOT = Path(__file__).resolve().parents[2]


def test_generated_vyper_reasons_module_matches_python_table():
    assert (ROOT / "contracts/modules/reasons.vy").read_text() == reasons.vyper_module()


def test_codes_are_dense_unique_and_mirrored_by_constants():
    codes = [r.code for r in reasons.REASONS]
    assert codes == list(range(len(codes)))
    assert {m.name: m.value for m in Reject} == {r.name: r.code for r in reasons.REASONS}
