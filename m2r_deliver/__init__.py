"""m2r-deliver: one mail on stdin becomes a Redmine issue; the exit status tells the mail system what to do."""

__version__ = "0.1.0"
