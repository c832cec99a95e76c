"""`make gas` renderer: every DESIGN §6 operation appears next to its target and anchors."""

from __future__ import annotations

import json

from codexfield import gas_table


def _write(tmp_path, area, rows):
    (tmp_path / f"{area}.json").write_text(json.dumps({op: {"gas": g, "target": None} for op, g in rows.items()}))


def test_render__every_design_target__with_measurement_status_and_anchors(tmp_path):
    _write(tmp_path, "capsule", {"CapsuleRegistry.mint (2 parents)": 140_000})
    _write(tmp_path, "meter", {"UsageMeter.ingest per voucher, warm, batch of 32, distinct consumers": 31_000})
    _write(tmp_path, "royalty", {"propagate one hop, 1 parent (warm)": 17_000, "propagate one hop, 8 parents (warm)": 61_000})
    text = gas_table.render(tmp_path)
    for operation, target, _, _ in gas_table.TARGETS:
        assert f"| {operation}" in text and target in text
    assert "| mint a capsule with 2 parents | ≤ 150k | 140,000 | ✅ |" in text
    assert "| 31,000 | ❌ |" in text
    assert "not measured" in text  # e.g. claim: no royalty claim row written here
    assert "0xSplits" in text and "here ≈ 6,285 per extra parent warm" in text
    assert "Livepeer: 190k–300k" in text and "one RAV per transaction" in text


def test_update_readme__replaces_only_between_the_markers(tmp_path):
    _write(tmp_path, "capsule", {"CapsuleRegistry.mint (2 parents)": 1})
    readme = tmp_path / "README.md"
    readme.write_text(f"head\n{gas_table.BEGIN}\nSTALE-ROW\n{gas_table.END}\ntail\n")
    assert gas_table.update_readme(readme, tmp_path)
    text = readme.read_text()
    assert text.startswith("head\n") and text.endswith("tail\n") and "STALE-ROW" not in text
