"""The `syllabus` command line: one module per group of commands, each registering its sub-parsers."""
