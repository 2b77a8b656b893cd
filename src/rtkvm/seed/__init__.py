"""First boot of a tenant's image: SSH keys, user-data, the NoCloud seed's contents."""
