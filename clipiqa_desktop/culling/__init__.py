"""Decisions to and from the world: XMP (sidecars and embedded), exports. No Qt."""
