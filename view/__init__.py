"""``horizongym view``: a local web app to look at runs and episodes, and to play any env in the browser."""
