"""Release signing: keys, the OpenSSF model-signing bundles made at publish, revocation."""
