"""The code graph: definitions, references, call sites and imports, from the chunker's tree-sitter parse."""
