"""Host tuning: turn a partition plan into a tuned compute node, prove it, undo it.

``profile`` loads the TOML profiles (the knowledge), ``plugins`` hold one
small mechanism per kind of setting, ``writer`` and ``journal`` make every
change reversible, ``engine`` orchestrates plan / apply / verify / rollback,
``export`` renders the equivalent tuned profile. This package must not
compute the partition plan (the planner does) nor configure guests.
"""
