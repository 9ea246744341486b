"""The checks, one module per aspect: each judges what was measured against its policy section
and returns check dicts (status, reason, figures) for the result."""
