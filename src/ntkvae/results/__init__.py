"""Readers of the workflow's HDF5 files and the measures computed from them (numpy only).

Figures and claims both import from here, never the other way round, so that a figure and
the claim that cites it compute their number with the same function:
`runs` (training files), `kernels` (kernel and prediction files, empirical-NTK probes),
`measures` (slopes, rates, rank correlations, the minimum width).
"""
