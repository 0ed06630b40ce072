"""The command lines: `tandem` and `tandemd`."""
