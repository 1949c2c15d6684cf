"""Demo relying party ("Demo portal") for the idp; see :mod:`examples.portal.app`."""
