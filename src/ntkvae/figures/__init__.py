"""Figures: one module per figure, each built only from HDF5 files (no training or kernel code).

Readers and measures live in `ntkvae.results` (shared with the claims table);
`style` holds the shared look (column width, colours per width, mean-and-spread lines);
`python -m ntkvae.plot <figure> ...` is the CLI the figure rules call.
"""
