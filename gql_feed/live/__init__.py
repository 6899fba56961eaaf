"""The fan-out engine every transport shares: groups, replay, the resume seam."""
