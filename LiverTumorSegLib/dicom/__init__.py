"""DICOM in and out: CT series folders as input (`series`, `discovery`, `geometry`) and DICOM
Segmentation objects as output (`seg`). Needs pydicom and highdicom, imported only when used."""
