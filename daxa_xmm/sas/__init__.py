"""Running SAS: its environment and version, the argv of a call, the runner with its process groups,
slots, orphan watchdog and stop requests, stderr parsing, product checks, the calibration index and
filter expressions.
"""
