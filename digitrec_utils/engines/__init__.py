"""One engine per notebook: the work behind 01 to 07, each thin notebook calling one of these."""
