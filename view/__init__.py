"""``horizongym view``: a local web app over run files and training runs (Starlette, pages shipped here).

:mod:`~horizongym.view.catalog` holds the runs named on the command line, each file indexed once;
:mod:`~horizongym.view.app` serves the JSON API and the page in ``static/``.
"""
