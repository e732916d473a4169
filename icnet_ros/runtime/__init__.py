"""ROS-free runtime: weight files, label sets, image decoding, the engine, metrics."""
