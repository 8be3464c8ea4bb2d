"""The grammar-book track: a low-resource language learned from a grammar book, a wordlist and a
few hundred sentence pairs (MTOB's Kalamang; Kanuri in the same shape). The sources' readers and
records live in `lowres_mt.corpora.book`; here:

- `lexicon`: wordlist lookup with simple morphology;
- `resources`: a recipe's `book:` material, contamination-filtered;
- `aux_tasks.book_examples`: auxiliary training examples for `method: tell+book`;
- `context.BookContext`: in-context prompts W / W+S / W+S+G within a token budget.
"""
