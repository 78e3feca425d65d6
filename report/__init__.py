"""The clinician's session report: one self-contained HTML page from either store."""
