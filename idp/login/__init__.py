"""The hosted sign-in journey: transaction, password, SSO session, views."""
