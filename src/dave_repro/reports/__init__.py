"""Tables, figures and the report, each beside the paper's own numbers."""
