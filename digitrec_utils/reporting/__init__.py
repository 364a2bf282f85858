"""What the reports show: display helpers, tables, results records, HTML pages and templates."""
