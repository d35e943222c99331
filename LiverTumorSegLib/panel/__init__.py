"""What the Slicer module's panel needs beyond the engine: the worker thread it polls while a
segmentation runs (`background_run`) and the installation of missing packages through Slicer's own
tools (`installer`). Nothing in the engine imports this subpackage; Slicer is imported only inside
the functions that need it, so the tests run it headless with fakes."""
