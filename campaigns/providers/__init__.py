"""Email providers: one module per provider, chosen through `registry.provider_for`.

Each provider declares how many messages one claim hands it (`max_batch`), answers every
message with a typed `SendResult` (throttled or not, per message), and says how it
reconciles a batch whose fate is unknown (`lookup`). See `registry.py` to add one.
"""
