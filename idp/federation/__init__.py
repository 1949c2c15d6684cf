"""Signing in through an upstream OpenID provider, below the hosted pages: talking to it
(``client``, ``endpoints``) and finding the local account its sign-in is (``linking``)."""
