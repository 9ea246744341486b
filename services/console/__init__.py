"""The console: a read-only web view of the pipeline, a downstream consumer like any other.

It reads the topics (from their ends, with no group and no commits) and frame pixels from the
claim-check store, and writes nothing anywhere."""
