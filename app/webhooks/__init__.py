"""Webhooks: signed POSTs (Standard Webhooks) when a job ends or a model's inspection ends."""
