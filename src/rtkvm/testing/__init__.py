"""Test helpers shipped with rtkvm: synthetic and captured host trees for HostFS.

Nothing here touches the real host; it must not be imported by production code.
"""
