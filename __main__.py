"""Pulumi program for Cosmic Chat. Placeholder until the infrastructure issue lands."""
