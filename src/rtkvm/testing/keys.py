"""Public keys made once with ssh-keygen (OpenSSH 9.2) for tests: public halves only, so
that tests need no ssh-keygen; shipped like structlog.testing."""

ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA9x3k+qcT3ZpR6BCsQ5EtjsMUQIkb+CLfWO/7uuKXlW alice@laptop"
)
ED25519_FINGERPRINT = "SHA256:JtTH1EGyv4MTDYAiHx7mx9mnvpzWJ/43pMI3jaHFgs4"  # ssh-keygen -lf
RSA_1024 = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCh3woKFqdj2Poxj0vwluoWc9a7LoGNCOmbpp4/KgtSvzzEMbCF"
    "RKTRkqKwIEw9Na2CixU8mPGjVqVtInDlJsfES1Kfr3Y5U8wM4akY1UTVpSpdDM3UOymmfwD/7TSgL4iwYxZsEv"
    "mkVhpr3bGrt2eLcJUjKNmjtlbsdKpgtzmH7Q== root@vm"
)
ECDSA = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBGbXglVkfb2gzRsL"
    "TkX9nXTKb58I5ikQIOfhHWnrRlxrHWE6ZYRp7VwSmkUj8SyYsNgv+4xecKv+7oHC/lGW5Dk="
)
