"""Plotly figure builders used by the pages: one module per subject, each taking recexp's own
statistics objects (or a Dataset / BehaviorLog) and returning a ``plotly.graph_objects.Figure``.

No streamlit here: pages draw the figures with ``st.plotly_chart``, and the same figures can be saved
as HTML from a notebook or the command line.

* :mod:`recexp.charts.imbalance`: class balance, long tail (Lorenz curves), funnel, class mix per
  category, per-class feature distributions.

A chart that draws a sample of the rows says so in its title with :func:`sample_note`; frames sampled
for drawing (e.g. :func:`recexp.importance.explore.stacked_values`) carry the number of rows they were
drawn from in ``frame.attrs["total_rows"]``.
"""

from recexp.i18n import _, format_integer


def frame_note(frame) -> str:
    """:func:`sample_note` of a frame sampled for drawing (``frame.attrs["total_rows"]``, when it has it)."""
    return sample_note(len(frame), frame.attrs.get("total_rows"))


def sample_note(shown: int, total: int | None = None, how: str = "") -> str:
    """``" (2,000 of 71,898 rows shown)"`` for a chart drawing a sample; ``""`` when it draws every row.

    ``how`` adds how the sample was drawn, e.g. ``"at most 2,000 per class"``.

    >>> sample_note(2000, 71898), sample_note(10, 10), sample_note(5, 9, how="at most 5 per run")
    (' (2,000 of 71,898 rows shown)', '', ' (5 of 9 rows shown, at most 5 per run)')
    """
    if total is None or shown >= total:
        return ""
    counts = {"shown": format_integer(shown), "total": format_integer(total)}
    if how:
        return " " + _("({shown} of {total} rows shown, {how})").format(how=how, **counts)
    return " " + _("({shown} of {total} rows shown)").format(**counts)
