"""Writes to the customer base, one module a verb: demo data, suppression, import jobs.

Callers import from the module (`from customers.services.suppression import customer_suppress`).
"""
