"""The observation's ODF: its summary files, which sub-exposures are processable, unpacking, FITS reading."""
