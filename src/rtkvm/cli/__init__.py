"""The ``rtkvm`` command line: thin wrappers that parse flags and print reports.

No logic lives here beyond choosing what to call and how to print it.
"""
