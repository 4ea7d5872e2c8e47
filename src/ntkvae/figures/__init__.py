"""Figures: one module per figure, each built only from HDF5 files (no training or kernel code).

`style` holds the shared look (column width, colours per width, mean-and-spread lines);
`python -m ntkvae.plot <figure> ...` is the CLI the figure rules call.
"""
