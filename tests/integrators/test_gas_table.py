"""`make gas` renderer: every DESIGN §6 operation appears next to its target and anchors."""

from __future__ import annotations

import json

from codexfield import gas_table


def _write(tmp_path, area, rows):
    (tmp_path / f"{area}.json").write_text(json.dumps({op: {"gas": g, "target": None} for op, g in rows.items()}))


def test_render__every_design_target__with_measurement_status_and_anchors(tmp_path):
    _write(tmp_path, "capsule", {"CapsuleRegistry.mint (2 parents)": 140_000})
    _write(tmp_path, "meter", {"UsageMeter.ingest per voucher, warm, batch of 32, distinct consumers": 31_000})
    _write(
        tmp_path,
        "royalty",
        {"propagate one hop, 1 parent (warm)": 17_000, "propagate one hop, 8 parents (warm)": 61_000},
    )
    text = gas_table.render(tmp_path)
    for operation, target, _, _, _ in gas_table.TARGETS:
        assert f"| {operation}" in text and target in text
    assert "| mint a capsule with 2 parents | ≤ 150k | 140,000 | ✅ |" in text
    assert "| 31,000 | ❌ |" in text
    assert "not measured" in text  # e.g. claim: no royalty claim row written here
    assert (
        "0xSplits v1 SplitMain: distributeERC20 per extra recipient, warm (1 wei left): not measured in this run"
        in text
    )
    assert "Livepeer: 190k–300k" in text and "one RAV per transaction" in text


def test_render__anchor_rows__measured_figure_ratio_and_met_beside_the_target(tmp_path):
    """Anchor figures come from the measured anchor rows (area "anchor"), never from the source."""
    cycle = "full royalty cycle per recipient, K={} (steady state: pay + hop + every recipient claims)"
    _write(
        tmp_path,
        "royalty",
        {
            cycle.format(2): 90_000,
            cycle.format(8): 70_000,
            "propagate, per extra parent (after the parents claimed)": 6_300,
        },
    )
    _write(
        tmp_path,
        "anchor",
        {
            "0xSplits v1 SplitMain: full cycle per recipient, K=2 (steady state)": 100_000,
            "0xSplits v1 SplitMain: full cycle per recipient, K=8 (steady state)": 65_000,
            "0xSplits v1 SplitMain: distributeERC20 per extra recipient, warm (1 wei left)": 6_400,
        },
    )
    text = gas_table.render(tmp_path)
    assert (
        "| 90,000 | ✅ | 0xSplits v1 SplitMain: full cycle per recipient, K=2 (steady state): 100,000 measured here (0.90×) |"
        in text
    )
    assert (
        "| 70,000 | ❌ | 0xSplits v1 SplitMain: full cycle per recipient, K=8 (steady state): 65,000 measured here (1.08×) |"
        in text
    )
    assert "| 6,300 | ✅ | 0xSplits v1 SplitMain: distributeERC20 per extra recipient, warm (1 wei left): 6,400" in text
    assert "| anchor | 0xSplits v1 SplitMain: full cycle per recipient, K=2 (steady state) | 100,000 |" in text


def test_update_readme__replaces_only_between_the_markers(tmp_path):
    _write(tmp_path, "capsule", {"CapsuleRegistry.mint (2 parents)": 1})
    readme = tmp_path / "README.md"
    readme.write_text(f"head\n{gas_table.BEGIN}\nSTALE-ROW\n{gas_table.END}\ntail\n")
    assert gas_table.update_readme(readme, tmp_path)
    text = readme.read_text()
    assert text.startswith("head\n") and text.endswith("tail\n") and "STALE-ROW" not in text
