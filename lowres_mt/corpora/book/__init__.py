"""Readers of the grammar-book track's sources, registered in `lowres_mt.corpora.readers.READERS`:
`archive` (encrypted benchmark zips, decrypted into the cache only), `mtob` (benchmark files),
`latex` + `texmarkup` (the LaTeX grammar), `cldf` (Dictionaria, IDS), the records they return
(`records`: Lexeme, GlossedExample, BookSection) and `splits` (the contamination-safe dictionary
split and the in-text guard)."""
