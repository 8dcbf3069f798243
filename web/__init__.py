"""Site pages that belong to no one app: the dashboard and the customer page.

The top of the layers (config > web > campaigns > ...): these pages read every app, so they
live above all of them, and no app imports web.
"""
