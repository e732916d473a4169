"""The stages one frame's time is split into, in pipeline order (timing messages, diagnostics, benchmarks)."""

ENGINE_STAGES = ("decode", "upload", "preprocess", "inference", "postprocess", "download")
"""The engine's: decode (raw rows or compressed bytes to RGB), upload, preprocess, inference,
postprocess (score resize and argmax), download. On a batch, all but decode are the batch's."""

NODE_STAGES = ENGINE_STAGES + ("colorize", "publish")
"""The node adds colorize (colour mask and overlay, only while subscribed) and publish."""
