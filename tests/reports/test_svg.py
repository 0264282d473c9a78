"""The inline charts: labels escaped, gaps drawn as gaps, axes on round numbers."""

from bridge.reports import svg


def test_labels_are_escaped_and_nothing_is_fetched():
    chart = svg.hbar_chart([("<script>", 3.0), ("a&b", 1.0)], title="t<")
    assert "<script>" not in chart
    assert "&lt;script&gt;" in chart
    assert "a&amp;b" in chart
    assert "http" not in chart


def test_a_missing_value_breaks_the_line_instead_of_dropping_to_zero():
    chart = svg.line_chart({"p99": [1.0, 2.0, None, 3.0, 4.0]}, title="lag")
    assert chart.count("<polyline") == 2


def test_axes_end_on_round_numbers():
    assert [svg.nice_max(v) for v in (0, 0.3, 7, 13, 2600)] == [1.0, 0.5, 10.0, 20.0, 5000.0]
