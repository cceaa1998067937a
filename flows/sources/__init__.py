"""One module per kind of source: parse files into typed frames."""
