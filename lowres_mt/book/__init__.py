"""The grammar-book track: a low-resource language learned from a grammar book, a wordlist and a
few hundred sentence pairs (MTOB's Kalamang; Kanuri in the same shape).

- `records`: Lexeme, GlossedExample, BookSection;
- readers of the sources (`readers`, registered in `lowres_mt.corpora.readers.READERS`):
  `archive` (encrypted benchmark zips, decrypted into the cache only), `mtob` (benchmark files),
  `latex` + `texmarkup` (the LaTeX grammar), `cldf` (Dictionaria, IDS);
- `splits`: the contamination-safe dictionary split and the in-text guard;
- `lexicon`: wordlist lookup with simple morphology;
- `resources`: a recipe's `book:` material, contamination-filtered;
- `aux_tasks.book_examples`: auxiliary training examples for `method: tell+book`;
- `context.BookContext`: in-context prompts W / W+S / W+S+G within a token budget.
"""
