"""Revoking issued tokens, called by the domains that end a permission (:mod:`.service`)."""
