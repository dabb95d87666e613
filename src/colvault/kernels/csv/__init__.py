"""The CSV importer's kernels: block scan, tokenizer, numbers, dates, text, the row parser, one
compiled specialization each (:mod:`.jit`), and the helper process that compiles them beside an
import on a cold cache (:mod:`.background`)."""
