"""Real-time guests: the RT flavor spec, pinning, the libvirt domain design and its audit.

Entry points: :func:`rtkvm.domain.design.design_domain` (spec + placement +
boot config -> domain XML), :func:`rtkvm.domain.placement.place` (plan +
topology -> pinning), :func:`rtkvm.domain.audit.audit_domain` (any domain ->
findings). This package never talks to libvirt; the runtime does.
"""
