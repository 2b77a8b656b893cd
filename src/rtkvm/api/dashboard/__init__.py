"""The operator's web dashboard, served by the API on its own port and with its tokens."""
