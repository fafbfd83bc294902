"""A small read-only web page at ``/ui``: models, jobs with live progress, reports and plots."""
