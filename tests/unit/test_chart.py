"""The dashboard's chart is pure geometry: counts per bucket in, SVG points out."""

from datetime import UTC, datetime, timedelta

from tasks_app.ops.dashboard import line_chart

URL = "/admin/fairness/"


def test_the_chart_scales_counts_into_the_plot_and_labels_clock_times():
    since = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    chart = line_chart(
        [("submissions", "submitted", [0, 4, 2]), ("starts", "started", [1, 1, 0])],
        since=since,
        step=timedelta(minutes=1),
        width=240,
        height=124,
        x_tick_every=2,
    )
    # Plot area: x from 40 to 216, y from 100 (zero) up to 10 (the peak, 4).
    assert chart.series[0].points == "40.0,100.0 128.0,10.0 216.0,55.0"
    assert chart.series[1].points == "40.0,77.5 128.0,77.5 216.0,100.0"
    assert [s.total for s in chart.series] == [6, 2]
    assert [(t.label, t.position) for t in chart.y_ticks] == [
        ("0", 100.0),
        ("2", 55.0),
        ("4", 10.0),
    ]
    assert [(t.label, t.position) for t in chart.x_ticks] == [("12:00", 40.0), ("12:02", 216.0)]


def test_an_empty_chart_is_a_flat_line_not_a_division_by_zero():
    chart = line_chart(
        [("submissions", "submitted", [0, 0])],
        since=datetime(2026, 11, 1, tzinfo=UTC),
        step=timedelta(minutes=1),
    )
    assert chart.series[0].total == 0
    assert [t.label for t in chart.y_ticks] == ["0", "1"]
