"""The security suite: one file per class of attack, each naming the published vulnerabilities
of peer identity providers (CVE numbers) and the review findings it guards against.

Every test here drives the product as an attacker would (hosted pages, protocol endpoints,
CLI) and fails on the code that had the hole.
"""
