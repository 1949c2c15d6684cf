"""SCIM 2.0 provisioning (RFC 7643, RFC 7644) at ``{issuer}/scim/v2``: an identity provider or
an HR system creates, updates, deactivates and deletes the tenant's users and groups.

``models`` declares what we serve (scim2-models), ``filters`` turns SCIM filters into SQL,
``users`` and ``groups`` map resources onto ours through ``idp.admin``, ``views`` is the
HTTP interface.
"""
