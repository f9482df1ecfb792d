"""Document ingestion: extract files into page-exact elements, then chunk them."""
