"""Maintainer instruments: model and node benchmarks, fuzzing, soak, the echo node.

Kept apart from the node package (``icnet_ros`` never imports it), as torchvision keeps its
``references/`` and Isaac ROS its benchmarks apart from what users run.
"""
