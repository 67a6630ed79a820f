"""Fleet: collectors publish device states on NATS JetStream, viewers build their timeline from the bus.

Sits at the ``record`` layer (tests/unit/test_import_layers.py): its wire format is the recording codec's
(``record/codec.py``), and the viewer side is a collector of ``DeviceState``s for a ``Timeline`` like any other.
"""
