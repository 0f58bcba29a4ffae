"""What the notebooks show: tables (pandas Styler) and widgets (ipywidgets), one module per step that has any.

The only package importing ipywidgets or Styler: the step modules return data, so the same engine runs
headless (papermill, the command line) without a widget front end.

* ``views.diff``: 04_diff's review tables and the approval buttons.
"""
