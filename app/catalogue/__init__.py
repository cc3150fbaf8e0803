"""Models, releases, components, files and manifests."""
