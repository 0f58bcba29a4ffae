"""Partial recovery of corrupted DynamoDB items from point-in-time recovery."""

__version__ = "0.1.0"
