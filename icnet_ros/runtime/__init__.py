"""Inference without ROS: image decoding, the segmentation engine (device, precision, streams), post-processing, timing."""
