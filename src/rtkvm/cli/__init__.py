"""The ``rtkvm`` command line: thin wrappers that parse flags and print reports.

Commands choose what to call and how to print it; what to decide belongs to
the layers below (the all-in-one stack says which of its actions are
warnings, measurement results carry their own notes). Where a command still
holds a policy, its module says so.
"""
