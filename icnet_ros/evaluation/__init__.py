"""Scoring a segmenter against labelled frames: bags, ground truth, metrics, reports (no ROS)."""
