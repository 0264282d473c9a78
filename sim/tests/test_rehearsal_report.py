"""The rehearsal summary says plainly whether the rehearsal went through."""

from bridge_sim.rehearsal_report import Rehearsal, render_rehearsal


def test_failed_devices_turn_the_summary_into_a_warning() -> None:
    record = Rehearsal(things=10, progress=[(0.0, 0, 0, 10), (2.0, 8, 2, 0)])
    record.stages.append(("initial sync", 2.0))
    html = render_rehearsal(record)
    assert "Look before the real window:</b> 2 devices failed, 8 of 10 reached Azure" in html
    assert "went through" not in html
