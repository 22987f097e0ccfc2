"""Plotly figure builders used by the pages: one module per subject, each taking recexp's own
statistics objects (or a Dataset / BehaviorLog) and returning a ``plotly.graph_objects.Figure``.

No streamlit here: pages draw the figures with ``st.plotly_chart``, and the same figures can be saved
as HTML from a notebook or the command line.

* :mod:`recexp.charts.imbalance`: class balance, long tail (Lorenz curves), funnel, class mix per
  category, per-class feature distributions.
"""
