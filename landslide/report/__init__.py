"""The report: our metrics from the MLflow store beside the paper's published numbers.

The paper's numbers (Tables VI-XII and the figures quoted in its text) are copied from the
paper into ``paper_tables.csv``, ``paper_other_results.csv`` and ``paper_mmd.csv`` here.
"""
