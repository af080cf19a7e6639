"""The pipeline: its table of steps, an observation's plan and its run, the manifest and identity
tokens, locks, the calibration check, the head start of a local run.
"""
