"""The report: our metrics from the MLflow store beside the paper's published numbers.

The paper's numbers (Tables VI-XII and the figures quoted in its text) are copied from the
paper into ``paper_tables.csv``, ``paper_other_results.csv`` and ``paper_mmd.csv`` here.

A report is made in four steps: :mod:`~landslide.report.collect` reads the runs (their
setting, training counts per domain and every logged metric), :mod:`~landslide.report.tables`
builds the tables, :mod:`~landslide.report.plots` draws their figures and
:mod:`~landslide.report.markdown` renders the text; :mod:`~landslide.report.publish` writes
them into a folder and logs them to MLflow.
"""
