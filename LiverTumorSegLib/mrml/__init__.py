"""The engine on Slicer scenes (MRML): volume node in, `Liver` and `Tumor` segments and a statistics
table out, plus the self-test checks that Slicer's *Reload and Test* and pytest share.

Only this subpackage works with MRML nodes. It needs Slicer's MRML classes (inside Slicer, or headless
with the PyPI `slicer-core`), which its modules import only when they are used; the rest of
`LiverTumorSegLib` needs neither Qt nor Slicer.
"""
